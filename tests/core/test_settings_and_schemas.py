from datetime import timezone

import pytest
from pydantic import ValidationError

from shoprec.data.schemas import Event, Product, json_schema, normalize_text, to_utc
from shoprec.settings import Settings


def test_settings_from_toml_and_env(tmp_path, monkeypatch):
    toml = tmp_path / "shoprec.toml"
    toml.write_text('store_url = "sqlite:///from-toml.db"\nkeep_versions = 7\n[service]\nport = 9001\n')
    monkeypatch.setenv("SHOPREC_CONFIG", str(toml))
    monkeypatch.setenv("SHOPREC_KEEP_VERSIONS", "5")
    settings = Settings()
    assert settings.store_url == "sqlite:///from-toml.db"
    assert settings.keep_versions == 5  # env wins over the file
    assert settings.service.port == 9001
    monkeypatch.setenv("SHOPREC_SERVICE__PORT", "9002")
    assert Settings().service.port == 9002


def test_product_normalises_text_and_category_path():
    p = Product(id=12, title="  Wireless\u00a0 <b>Earbuds</b> ", description="<p>Great&nbsp;sound</p>", category="Electronics > Audio > Earbuds", price=19.9)
    assert p.id == "12"
    assert p.title == "Wireless Earbuds"
    assert p.description == "Great sound"
    assert p.category == ["Electronics", "Audio", "Earbuds"]
    assert "Electronics > Audio > Earbuds" in p.text()


def test_product_rejects_negative_price_and_bad_currency():
    with pytest.raises(ValidationError) as err:
        Product(id="a", title="x", price=-1)
    assert err.value.errors()[0]["loc"] == ("price",)
    with pytest.raises(ValidationError):
        Product(id="a", title="x", currency="dollars")


def test_event_rules():
    e = Event(event_id=1, user_id="u", item_id="i", type="view", timestamp=1_700_000_000_000)
    assert e.timestamp.tzinfo == timezone.utc and e.timestamp.year == 2023
    with pytest.raises(ValidationError, match="item_id is required"):
        Event(event_id="2", user_id="u", type="purchase", timestamp="2024-01-01T00:00:00Z")
    with pytest.raises(ValidationError, match="query is required"):
        Event(event_id="3", user_id="u", type="search", timestamp="2024-01-01")
    with pytest.raises(ValidationError):
        Event(event_id="4", user_id="u", item_id="i", type="teleport", timestamp="2024-01-01")
    assert Event(event_id="5", user_id="u", type="search", query="  无线  耳机 ", timestamp="2024-01-01").query == "无线 耳机"


def test_normalize_text_nfc_and_timestamps():
    assert normalize_text("e\u0301") == "\u00e9"
    assert to_utc("2024-05-01T10:00:00+02:00").hour == 8
    with pytest.raises(ValueError):
        to_utc([1])


def test_json_schema_documents_all_records():
    schema = json_schema()
    assert set(schema["definitions"]) == {"Product", "User", "Event"}
    assert "event_id" in schema["definitions"]["Event"]["required"]
