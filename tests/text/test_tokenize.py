"""The CJK-aware tokenizer: English words, numbers, NFKC, jieba segmentation."""

from shoprec.text.tokenize import ENGLISH_STOPWORDS, is_cjk, tokenize


def test_english_words_numbers_and_case():
    assert tokenize("Men's Wireless EARBUDS, Bluetooth 5.3 - 2-Pack") == \
        ["mens", "wireless", "earbuds", "bluetooth", "5.3", "2", "pack"]


def test_nfkc_full_width_forms_become_ascii():
    assert tokenize("ＵＳＢ－Ｃ　１２０Ｗ") == ["usb", "c", "120w"]


def test_chinese_is_segmented_into_words():
    tokens = tokenize("无线蓝牙耳机")
    assert {"无线", "蓝牙", "耳机"} <= set(tokens)
    # A title written differently shares the same words.
    assert {"无线", "蓝牙", "耳机", "5.3"} <= set(tokenize("无线耳机 蓝牙5.3"))


def test_mixed_chinese_and_english():
    assert tokenize("iPhone 保护壳") [:1] == ["iphone"]
    assert "保护" in tokenize("iPhone 保护壳")


def test_is_cjk():
    assert is_cjk("蓝牙 earbuds")
    assert is_cjk("ヘッドホン")
    assert not is_cjk("earbuds 5.3")
    assert not is_cjk("")


def test_punctuation_and_emoji_only_give_no_tokens():
    assert tokenize('( ) " 😀 !!! ') == []
    assert tokenize("") == []


def test_stopwords_are_kept_but_listed():
    assert tokenize("case for the phone") == ["case", "for", "the", "phone"]
    assert {"for", "the"} <= ENGLISH_STOPWORDS and "phone" not in ENGLISH_STOPWORDS
