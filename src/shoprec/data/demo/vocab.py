"""Bilingual (English / simplified Chinese) vocabulary of the demo shop: departments, leaf
categories, brands, attribute values, description phrases and query typos.

Every text pair is `(english, chinese)`. Titles, descriptions and search queries are composed
from these words, so the Chinese side must be real, searchable Chinese (无线, 蓝牙, 耳机 ...).
"""

from __future__ import annotations

from dataclasses import dataclass, field

Pair = tuple[str, str]


@dataclass(frozen=True)
class Department:
    key: str
    name: Pair
    brands: tuple[str, ...]
    benefits: tuple[Pair, ...]


@dataclass(frozen=True)
class Leaf:
    """One leaf category: path department > sub > leaf, its vocabulary and price law.

    price_median / price_sigma: log-normal price in USD (median, sigma of log price).
    attributes: attribute name -> possible (en, zh) values; the first two appear in titles.
    consumable: bought again and again (repeat purchases are simulated).
    style: "product" (brand + model + modifiers + noun), "plain" (no model word: groceries,
    non-fiction books) or "book" (a made-up book name + genre noun).
    """

    department: str
    sub: Pair
    name: Pair
    nouns: tuple[Pair, ...]
    modifiers: tuple[Pair, ...]
    price_median: float
    price_sigma: float
    attributes: dict[str, tuple[Pair, ...]] = field(default_factory=dict)
    consumable: bool = False
    style: str = "product"

    @property
    def slug(self) -> str:
        return self.name[0].lower().replace("&", "and").replace("'", "").replace(" ", "-")


COLORS: tuple[Pair, ...] = (
    ("black", "黑色"), ("white", "白色"), ("silver", "银色"), ("blue", "蓝色"), ("red", "红色"),
    ("green", "绿色"), ("pink", "粉色"), ("grey", "灰色"), ("navy", "藏青色"), ("beige", "米色"),
)
TECH_COLORS = COLORS[:4] + (("grey", "灰色"),)
APPAREL_SIZES: tuple[Pair, ...] = (("S", "S码"), ("M", "M码"), ("L", "L码"), ("XL", "XL码"), ("XXL", "XXL码"))
SHOE_SIZES: tuple[Pair, ...] = (
    ("US 6", "39码"), ("US 7", "40码"), ("US 8", "41码"), ("US 9", "42码"), ("US 10", "43码"), ("US 11", "44码"),
)
BOOK_FORMATS: tuple[Pair, ...] = (("paperback", "平装"), ("hardcover", "精装"), ("ebook", "电子书"))
AGES: tuple[Pair, ...] = (("ages 3+", "3岁以上"), ("ages 6+", "6岁以上"), ("ages 8+", "8岁以上"), ("ages 12+", "12岁以上"))

DEPARTMENTS: tuple[Department, ...] = (
    Department("electronics", ("Electronics", "电子产品"),
               ("Sonora", "Voltix", "Auralis", "Nexon", "Kestrel", "Lumina", "Zentri", "Haoyun"),
               (("Stable connection and long battery life.", "连接稳定，续航持久。"),
                ("Ships with a two-year warranty.", "享受两年质保。"),
                ("Pairs quickly with phones, tablets and laptops.", "可快速连接手机、平板和电脑。"),
                ("Compact design that is easy to carry.", "小巧设计，便于携带。"),
                ("Firmware updates keep improving it.", "固件持续升级优化。"))),
    Department("home", ("Home & Kitchen", "家居厨房"),
               ("Lumina", "Casavida", "Ironleaf", "Homely", "Kitchara", "Nordhem", "Everyday Basics", "Meijia"),
               (("Easy to clean and built to last.", "易于清洁，经久耐用。"),
                ("Made from food-safe materials.", "采用食品级安全材料。"),
                ("A practical gift for a new home.", "乔迁新居的实用礼物。"),
                ("Saves space in small apartments.", "节省空间，适合小户型。"),
                ("Designed for everyday family use.", "专为家庭日常使用设计。"))),
    Department("sports", ("Sports & Outdoors", "运动户外"),
               ("Northpeak", "Stridefast", "Trailon", "Kestrel", "Everyday Basics", "Apexa", "Yundong"),
               (("Tested by athletes in real conditions.", "经专业运动员实测。"),
                ("Lightweight and comfortable for long sessions.", "轻便舒适，长时间运动无负担。"),
                ("Durable materials for outdoor adventures.", "耐用材质，适合户外探险。"),
                ("Suitable for beginners and experienced athletes.", "新手和资深运动爱好者都适用。"))),
    Department("beauty", ("Beauty & Personal Care", "美妆个护"),
               ("Belleza", "Dermalab", "Aurora Skin", "Huali", "Petalia", "Pure & Co"),
               (("Dermatologist tested and gentle on skin.", "经皮肤科测试，温和不刺激。"),
                ("Free of parabens and artificial colours.", "不含防腐剂和人工色素。"),
                ("Visible results in four weeks.", "四周可见效果。"),
                ("Suitable for daily use, morning and night.", "早晚日常均可使用。"))),
    Department("toys", ("Toys & Games", "玩具游戏"),
               ("Brickwise", "Playfield", "Funbox", "Tinytown", "Leyou"),
               (("Safe, non-toxic materials.", "材料安全无毒。"),
                ("Encourages creativity and problem solving.", "激发创造力和解决问题的能力。"),
                ("Fun for the whole family.", "全家一起玩的乐趣。"),
                ("A popular birthday gift.", "热门生日礼物。"))),
    Department("books", ("Books", "图书"),
               ("Penfield Press", "Blue Lantern Books", "Lotus House", "Xinyue Press", "Maplewood"),
               (("A book readers recommend to their friends.", "读者口碑推荐之作。"),
                ("Beautifully printed and easy to read.", "印刷精美，阅读舒适。"),
                ("Reviewed as a must-read of the year.", "被评为年度必读书目。"),
                ("Includes a new foreword by the author.", "附作者新序。"))),
    Department("fashion", ("Clothing, Shoes & Bags", "服饰鞋包"),
               ("Northpeak", "Urbanline", "Everyday Basics", "Moda Lina", "Stridefast", "Qingyi"),
               (("Soft fabric that feels great all day.", "面料柔软，全天舒适。"),
                ("Machine washable.", "可机洗。"),
                ("A timeless style that goes with everything.", "百搭经典款式。"),
                ("True to size; see the size chart.", "尺码标准，请参考尺码表。"))),
    Department("grocery", ("Grocery", "食品饮料"),
               ("Bean & Leaf", "Golden Harvest", "Sunvale", "Everyday Basics", "Chaxiang", "Olivia Farms"),
               (("Packed fresh and sealed for flavour.", "新鲜包装，密封保留风味。"),
                ("Sourced from trusted farms.", "源自可信赖的农场。"),
                ("No artificial additives.", "无人工添加剂。"),
                ("Great value for everyday use.", "日常食用，物超所值。"))),
    Department("pets", ("Pet Supplies", "宠物用品"),
               ("Pawsome", "Furry Friends", "Whisker Co", "Everyday Basics"),
               (("Vet recommended.", "兽医推荐。"),
                ("Pets love it.", "宠物超爱。"),
                ("Made with safe, natural ingredients.", "采用安全天然的原料。"))),
    Department("baby", ("Baby", "母婴用品"),
               ("Little Sprout", "Bebe Care", "Everyday Basics", "Anxin"),
               (("Gentle on delicate baby skin.", "呵护宝宝娇嫩肌肤。"),
                ("Trusted by parents everywhere.", "深受父母信赖。"),
                ("Safety certified.", "通过安全认证。"))),
)

LEAVES: tuple[Leaf, ...] = (
    # Electronics
    Leaf("electronics", ("Audio", "音频"), ("Earbuds", "耳机"),
         (("wireless bluetooth earbuds", "无线蓝牙耳机"), ("true wireless earbuds", "真无线耳机"),
          ("in-ear earphones", "入耳式耳机"), ("sports earbuds", "运动耳机")),
         (("noise cancelling", "降噪"), ("waterproof", "防水"), ("long battery life", "长续航"),
          ("low latency", "低延迟"), ("hi-fi", "高保真")), 60, 0.65, {"color": TECH_COLORS}),
    Leaf("electronics", ("Audio", "音频"), ("Headphones", "头戴式耳机"),
         (("over-ear headphones", "头戴式耳机"), ("wireless headphones", "无线头戴耳机"),
          ("studio headphones", "监听耳机"), ("gaming headset", "游戏耳机")),
         (("noise cancelling", "降噪"), ("foldable", "可折叠"), ("hi-fi", "高保真"), ("with microphone", "带麦克风")),
         120, 0.6, {"color": TECH_COLORS}),
    Leaf("electronics", ("Audio", "音频"), ("Speakers", "音箱"),
         (("bluetooth speaker", "蓝牙音箱"), ("portable speaker", "便携音箱"), ("smart speaker", "智能音箱"),
          ("soundbar", "回音壁音箱")),
         (("waterproof", "防水"), ("bass boost", "重低音"), ("outdoor", "户外"), ("stereo", "立体声")),
         80, 0.7, {"color": TECH_COLORS}),
    Leaf("electronics", ("Phones", "手机通讯"), ("Smartphones", "智能手机"),
         (("smartphone", "智能手机"), ("5G phone", "5G手机"), ("android phone", "安卓手机")),
         (("dual sim", "双卡双待"), ("large screen", "大屏"), ("fast charging", "快充"), ("triple camera", "三摄")),
         450, 0.5, {"storage": (("128GB", "128GB"), ("256GB", "256GB"), ("512GB", "512GB")), "color": TECH_COLORS}),
    Leaf("electronics", ("Phones", "手机通讯"), ("Chargers & Power Banks", "充电器与充电宝"),
         (("fast charger", "快充充电器"), ("wireless charger", "无线充电器"), ("power bank", "充电宝"),
          ("USB-C cable", "Type-C数据线")),
         (("GaN", "氮化镓"), ("magnetic", "磁吸"), ("portable", "便携"), ("dual port", "双口")),
         25, 0.55, {"color": COLORS[:3]}),
    Leaf("electronics", ("Computers", "电脑办公"), ("Laptops", "笔记本电脑"),
         (("laptop", "笔记本电脑"), ("ultrabook", "轻薄本"), ("gaming laptop", "游戏本"), ("2-in-1 laptop", "二合一笔记本")),
         (("lightweight", "轻薄"), ("high performance", "高性能"), ("touchscreen", "触摸屏"), ("long battery life", "长续航")),
         900, 0.45, {"storage": (("512GB SSD", "512GB固态"), ("1TB SSD", "1TB固态")), "color": COLORS[:3]}),
    Leaf("electronics", ("Computers", "电脑办公"), ("Keyboards", "键盘"),
         (("mechanical keyboard", "机械键盘"), ("wireless keyboard", "无线键盘"), ("ergonomic keyboard", "人体工学键盘")),
         (("RGB backlit", "RGB背光"), ("quiet", "静音"), ("compact", "紧凑"), ("hot-swappable", "热插拔")),
         60, 0.6, {"color": COLORS[:3]}),
    Leaf("electronics", ("Computers", "电脑办公"), ("Mice", "鼠标"),
         (("wireless mouse", "无线鼠标"), ("gaming mouse", "游戏鼠标"), ("ergonomic mouse", "人体工学鼠标")),
         (("silent", "静音"), ("rechargeable", "可充电"), ("lightweight", "轻量化"), ("bluetooth", "蓝牙")),
         30, 0.6, {"color": TECH_COLORS}),
    Leaf("electronics", ("Wearables", "智能穿戴"), ("Smartwatches", "智能手表"),
         (("smartwatch", "智能手表"), ("fitness tracker", "运动手环"), ("GPS watch", "GPS手表")),
         (("heart rate monitor", "心率监测"), ("waterproof", "防水"), ("sleep tracking", "睡眠监测"),
          ("long battery life", "长续航")),
         150, 0.6, {"color": TECH_COLORS}),
    Leaf("electronics", ("Cameras", "摄影摄像"), ("Action Cameras", "运动相机"),
         (("action camera", "运动相机"), ("4K camera", "4K相机"), ("vlog camera", "Vlog相机")),
         (("waterproof", "防水"), ("stabilized", "防抖"), ("wide angle", "广角")),
         200, 0.55, {"color": COLORS[:3]}),
    # Home & Kitchen
    Leaf("home", ("Kitchen", "厨房"), ("Cookware", "锅具"),
         (("non-stick frying pan", "不粘锅"), ("wok", "炒锅"), ("saucepan", "汤锅"), ("cookware set", "锅具套装")),
         (("induction ready", "电磁炉通用"), ("heavy duty", "加厚"), ("oven safe", "可进烤箱"), ("lightweight", "轻便")),
         45, 0.6, {"material": (("stainless steel", "不锈钢"), ("cast iron", "铸铁"), ("ceramic", "陶瓷"), ("aluminum", "铝合金")),
                   "size": (("24 cm", "24厘米"), ("28 cm", "28厘米"), ("32 cm", "32厘米"))}),
    Leaf("home", ("Kitchen", "厨房"), ("Knives", "刀具"),
         (("chef knife", "厨师刀"), ("knife set", "刀具套装"), ("santoku knife", "三德刀"), ("paring knife", "水果刀")),
         (("Damascus steel", "大马士革钢"), ("ultra sharp", "锋利"), ("ergonomic handle", "人体工学手柄"), ("forged", "锻造")),
         40, 0.7, {"material": (("stainless steel", "不锈钢"), ("carbon steel", "碳钢"), ("ceramic", "陶瓷"))}),
    Leaf("home", ("Kitchen", "厨房"), ("Coffee Makers", "咖啡机"),
         (("espresso machine", "意式咖啡机"), ("drip coffee maker", "滴漏式咖啡机"), ("pour-over kettle", "手冲壶"),
          ("coffee grinder", "磨豆机")),
         (("automatic", "全自动"), ("programmable", "可预约"), ("compact", "小型"), ("stainless steel", "不锈钢")),
         90, 0.7, {"color": COLORS[:3]}),
    Leaf("home", ("Kitchen", "厨房"), ("Food Storage", "保鲜收纳"),
         (("food storage containers", "保鲜盒"), ("glass containers", "玻璃保鲜盒"), ("vacuum sealer bags", "真空保鲜袋"),
          ("lunch box", "便当盒")),
         (("airtight", "密封"), ("microwave safe", "可微波"), ("BPA-free", "无双酚A"), ("stackable", "可叠放")),
         22, 0.5, {"pieces": (("10-piece", "10件套"), ("24-piece", "24件套"), ("36-piece", "36件套"))}),
    Leaf("home", ("Bedding", "床上用品"), ("Pillows", "枕头"),
         (("memory foam pillow", "记忆棉枕头"), ("down pillow", "羽绒枕"), ("cooling pillow", "凉感枕头"), ("neck pillow", "颈椎枕")),
         (("orthopedic", "护颈"), ("hypoallergenic", "防螨"), ("washable", "可水洗"), ("extra soft", "柔软")),
         35, 0.5, {"size": (("standard", "标准"), ("queen", "大号"), ("king", "特大号"))}),
    Leaf("home", ("Bedding", "床上用品"), ("Sheets", "床单被套"),
         (("bed sheet set", "床单套装"), ("duvet cover", "被套"), ("fitted sheet", "床笠")),
         (("cotton", "纯棉"), ("silky", "丝滑"), ("breathable", "透气"), ("wrinkle free", "免烫")),
         40, 0.5, {"size": (("twin", "单人"), ("queen", "双人"), ("king", "特大双人")), "color": COLORS}),
    Leaf("home", ("Lighting", "灯具照明"), ("Lamps", "台灯"),
         (("desk lamp", "台灯"), ("floor lamp", "落地灯"), ("LED night light", "LED小夜灯"), ("bedside lamp", "床头灯")),
         (("dimmable", "可调光"), ("eye-care", "护眼"), ("smart", "智能"), ("rechargeable", "充电式")),
         35, 0.6, {"color": COLORS[:4]}),
    Leaf("home", ("Cleaning", "清洁电器"), ("Vacuums", "吸尘器"),
         (("cordless vacuum", "无线吸尘器"), ("robot vacuum", "扫地机器人"), ("handheld vacuum", "手持吸尘器")),
         (("powerful suction", "大吸力"), ("lightweight", "轻便"), ("HEPA filter", "HEPA过滤"), ("pet hair", "除宠物毛发")),
         180, 0.6, {"color": COLORS[:3]}),
    # Sports & Outdoors
    Leaf("sports", ("Running", "跑步"), ("Running Shoes", "跑步鞋"),
         (("running shoes", "跑步鞋"), ("trail running shoes", "越野跑鞋"), ("marathon shoes", "马拉松跑鞋")),
         (("lightweight", "轻量"), ("cushioned", "缓震"), ("breathable", "透气"), ("carbon plate", "碳板")),
         90, 0.4, {"size": SHOE_SIZES, "color": COLORS}),
    Leaf("sports", ("Running", "跑步"), ("Running Apparel", "跑步服饰"),
         (("running shirt", "跑步T恤"), ("running shorts", "跑步短裤"), ("running jacket", "跑步夹克"),
          ("compression tights", "压缩紧身裤")),
         (("quick-dry", "速干"), ("reflective", "反光"), ("breathable", "透气"), ("moisture wicking", "吸湿排汗")),
         30, 0.5, {"size": APPAREL_SIZES, "color": COLORS}),
    Leaf("sports", ("Fitness", "健身训练"), ("Yoga Mats", "瑜伽垫"),
         (("yoga mat", "瑜伽垫"), ("exercise mat", "健身垫"), ("travel yoga mat", "便携瑜伽垫")),
         (("non-slip", "防滑"), ("extra thick", "加厚"), ("eco-friendly TPE", "环保TPE"), ("foldable", "可折叠")),
         28, 0.5, {"color": COLORS}),
    Leaf("sports", ("Fitness", "健身训练"), ("Dumbbells", "哑铃"),
         (("adjustable dumbbells", "可调节哑铃"), ("dumbbell set", "哑铃套装"), ("kettlebell", "壶铃")),
         (("rubber coated", "包胶"), ("hex", "六角"), ("quick-adjust", "快调")),
         60, 0.7, {"weight": (("5 kg", "5公斤"), ("10 kg", "10公斤"), ("20 kg", "20公斤"), ("24 kg", "24公斤"))}),
    Leaf("sports", ("Camping & Hiking", "露营徒步"), ("Tents", "帐篷"),
         (("camping tent", "露营帐篷"), ("backpacking tent", "徒步帐篷"), ("family tent", "家庭帐篷"), ("pop-up tent", "速开帐篷")),
         (("waterproof", "防水"), ("2-person", "双人"), ("4-person", "四人"), ("ultralight", "超轻")),
         120, 0.6, {"color": (("green", "绿色"), ("orange", "橙色"), ("grey", "灰色"))}),
    Leaf("sports", ("Camping & Hiking", "露营徒步"), ("Hiking Backpacks", "登山包"),
         (("hiking backpack", "登山包"), ("daypack", "日用背包"), ("trekking backpack", "徒步背包")),
         (("waterproof", "防水"), ("40L", "40升"), ("lightweight", "轻量"), ("with rain cover", "带防雨罩")),
         65, 0.5, {"color": COLORS[:6]}),
    Leaf("sports", ("Cycling", "骑行"), ("Bike Helmets", "骑行头盔"),
         (("bike helmet", "自行车头盔"), ("cycling helmet", "骑行头盔"), ("mountain bike helmet", "山地车头盔")),
         (("lightweight", "轻量"), ("ventilated", "透气"), ("with LED light", "带LED灯")),
         55, 0.5, {"size": APPAREL_SIZES[:4], "color": COLORS[:5]}),
    # Beauty
    Leaf("beauty", ("Skincare", "护肤"), ("Serum", "精华"),
         (("face serum", "精华液"), ("vitamin C serum", "维C精华液"), ("hyaluronic acid serum", "玻尿酸精华液"),
          ("retinol serum", "视黄醇精华")),
         (("brightening", "提亮"), ("hydrating", "补水"), ("anti-aging", "抗老"), ("repairing", "修护")),
         28, 0.6, {"capacity": (("30 ml", "30毫升"), ("50 ml", "50毫升"))}, consumable=True),
    Leaf("beauty", ("Skincare", "护肤"), ("Moisturizer", "面霜"),
         (("face cream", "面霜"), ("moisturizer", "保湿霜"), ("night cream", "晚霜"), ("eye cream", "眼霜")),
         (("hydrating", "保湿"), ("for sensitive skin", "敏感肌适用"), ("anti-wrinkle", "抗皱"), ("lightweight", "清爽")),
         30, 0.6, {"capacity": (("50 ml", "50毫升"), ("100 ml", "100毫升"))}, consumable=True),
    Leaf("beauty", ("Skincare", "护肤"), ("Sunscreen", "防晒"),
         (("sunscreen", "防晒霜"), ("sunscreen lotion", "防晒乳"), ("sunscreen spray", "防晒喷雾")),
         (("SPF 50", "SPF50"), ("water resistant", "防水"), ("lightweight", "轻薄"), ("mineral", "物理防晒")),
         18, 0.5, {"capacity": (("50 ml", "50毫升"), ("100 ml", "100毫升"))}, consumable=True),
    Leaf("beauty", ("Makeup", "彩妆"), ("Lipstick", "口红"),
         (("lipstick", "口红"), ("matte lipstick", "哑光口红"), ("lip gloss", "唇釉"), ("lip tint", "染唇液")),
         (("long-lasting", "持久"), ("moisturizing", "滋润"), ("velvet", "丝绒")),
         20, 0.5, {"shade": (("red", "正红色"), ("nude", "裸色"), ("pink", "粉色"), ("coral", "珊瑚色"), ("berry", "莓果色"))}),
    Leaf("beauty", ("Hair Care", "洗护"), ("Shampoo", "洗发水"),
         (("shampoo", "洗发水"), ("anti-dandruff shampoo", "去屑洗发水"), ("conditioner", "护发素"), ("hair mask", "发膜")),
         (("silicone-free", "无硅油"), ("moisturizing", "滋润"), ("oil control", "控油"), ("repairing", "修护")),
         12, 0.5, {"capacity": (("400 ml", "400毫升"), ("750 ml", "750毫升"))}, consumable=True),
    Leaf("beauty", ("Fragrance", "香水"), ("Perfume", "香水"),
         (("eau de parfum", "香水"), ("eau de toilette", "淡香水"), ("body mist", "香氛喷雾")),
         (("floral", "花香调"), ("woody", "木质调"), ("fresh", "清新"), ("long-lasting", "持久留香")),
         60, 0.6, {"capacity": (("50 ml", "50毫升"), ("100 ml", "100毫升"))}),
    # Toys & Games
    Leaf("toys", ("Building Toys", "拼搭玩具"), ("Building Blocks", "积木"),
         (("building blocks set", "积木套装"), ("brick set", "拼装积木"), ("magnetic tiles", "磁力片")),
         (("creative", "创意"), ("STEM", "STEM益智"), ("city series", "城市系列"), ("1000-piece", "1000粒")),
         40, 0.7, {"age": AGES}),
    Leaf("toys", ("Puzzles", "拼图"), ("Jigsaw Puzzles", "拼图"),
         (("jigsaw puzzle", "拼图"), ("1000 piece puzzle", "1000片拼图"), ("3D puzzle", "3D立体拼图"), ("wooden puzzle", "木质拼图")),
         (("landscape", "风景"), ("animal", "动物"), ("for adults", "成人"), ("educational", "益智")),
         18, 0.5, {"age": AGES}),
    Leaf("toys", ("Board Games", "桌面游戏"), ("Board Games", "桌游"),
         (("board game", "桌游"), ("card game", "卡牌游戏"), ("strategy game", "策略桌游"), ("family game", "家庭游戏")),
         (("party", "聚会"), ("cooperative", "合作"), ("for kids", "儿童"), ("classic", "经典")),
         30, 0.5, {"age": AGES}),
    Leaf("toys", ("Plush", "毛绒玩具"), ("Stuffed Animals", "毛绒公仔"),
         (("stuffed animal", "毛绒玩具"), ("teddy bear", "泰迪熊"), ("plush pillow", "抱枕公仔")),
         (("extra soft", "柔软"), ("giant", "超大"), ("cute", "可爱"), ("panda", "熊猫")),
         20, 0.6, {"color": COLORS[:8]}),
    Leaf("toys", ("Remote Control", "遥控玩具"), ("RC Cars", "遥控车"),
         (("remote control car", "遥控车"), ("RC drift car", "遥控漂移车"), ("off-road RC truck", "越野遥控车")),
         (("high speed", "高速"), ("rechargeable", "可充电"), ("4WD", "四驱"), ("waterproof", "防水")),
         45, 0.6, {"age": AGES[1:]}),
    # Books
    Leaf("books", ("Fiction", "文学小说"), ("Novels", "小说"),
         (("mystery novel", "悬疑小说"), ("romance novel", "爱情小说"), ("historical novel", "历史小说"), ("thriller", "惊悚小说")),
         (("bestselling", "畅销"), ("award-winning", "获奖"), ("new edition", "新版")),
         15, 0.35, {"format": BOOK_FORMATS}, style="book"),
    Leaf("books", ("Fiction", "文学小说"), ("Science Fiction", "科幻"),
         (("science fiction novel", "科幻小说"), ("fantasy novel", "奇幻小说"), ("space opera", "太空歌剧小说")),
         (("bestselling", "畅销"), ("award-winning", "获奖"), ("illustrated", "插图版")),
         16, 0.35, {"format": BOOK_FORMATS}, style="book"),
    Leaf("books", ("Food & Drink", "美食生活"), ("Cookbooks", "菜谱"),
         (("cookbook", "菜谱"), ("baking book", "烘焙书"), ("vegetarian cookbook", "素食菜谱")),
         (("illustrated", "图解"), ("bestselling", "畅销"), ("family", "家常")),
         22, 0.35, {"format": BOOK_FORMATS}, style="plain"),
    Leaf("books", ("Children's Books", "童书"), ("Picture Books", "绘本"),
         (("picture book", "绘本"), ("bedtime story book", "睡前故事书"), ("children's encyclopedia", "儿童百科")),
         (("illustrated", "彩绘"), ("bestselling", "畅销"), ("award-winning", "获奖")),
         12, 0.4, {"format": BOOK_FORMATS[:2]}, style="book"),
    Leaf("books", ("Education", "教育学习"), ("Language Learning", "语言学习"),
         (("English vocabulary book", "英语词汇书"), ("Chinese textbook", "中文教材"), ("grammar guide", "语法指南"),
          ("phrasebook", "常用语手册")),
         (("beginner", "入门"), ("advanced", "进阶"), ("with audio", "附音频")),
         20, 0.35, {"format": BOOK_FORMATS}, style="plain"),
    # Fashion
    Leaf("fashion", ("Men's Clothing", "男装"), ("T-Shirts", "T恤"),
         (("crew neck t-shirt", "圆领T恤"), ("polo shirt", "Polo衫"), ("graphic tee", "印花T恤")),
         (("cotton", "纯棉"), ("slim fit", "修身"), ("oversized", "宽松"), ("short sleeve", "短袖")),
         20, 0.5, {"size": APPAREL_SIZES, "color": COLORS}),
    Leaf("fashion", ("Women's Clothing", "女装"), ("Dresses", "连衣裙"),
         (("midi dress", "中长款连衣裙"), ("maxi dress", "长裙"), ("summer dress", "夏季连衣裙"), ("knit dress", "针织连衣裙")),
         (("floral", "碎花"), ("chiffon", "雪纺"), ("elegant", "优雅"), ("casual", "休闲")),
         45, 0.5, {"size": APPAREL_SIZES[:4], "color": COLORS}),
    Leaf("fashion", ("Outerwear", "外套"), ("Jackets", "夹克"),
         (("down jacket", "羽绒服"), ("rain jacket", "冲锋衣"), ("denim jacket", "牛仔夹克"), ("fleece jacket", "抓绒外套")),
         (("waterproof", "防水"), ("lightweight", "轻薄"), ("hooded", "连帽"), ("windproof", "防风")),
         80, 0.6, {"size": APPAREL_SIZES, "color": COLORS}),
    Leaf("fashion", ("Bags", "箱包"), ("Handbags", "手提包"),
         (("tote bag", "托特包"), ("crossbody bag", "斜挎包"), ("shoulder bag", "单肩包"), ("handbag", "手提包")),
         (("leather", "真皮"), ("canvas", "帆布"), ("large capacity", "大容量"), ("minimalist", "简约")),
         55, 0.7, {"color": COLORS}),
    Leaf("fashion", ("Shoes", "鞋靴"), ("Sneakers", "休闲鞋"),
         (("sneakers", "运动鞋"), ("canvas shoes", "帆布鞋"), ("casual shoes", "休闲鞋"), ("slip-on shoes", "一脚蹬")),
         (("classic", "经典"), ("breathable", "透气"), ("platform", "厚底"), ("lightweight", "轻便")),
         60, 0.5, {"size": SHOE_SIZES, "color": COLORS}),
    # Grocery
    Leaf("grocery", ("Coffee & Tea", "咖啡茶饮"), ("Coffee Beans", "咖啡豆"),
         (("coffee beans", "咖啡豆"), ("ground coffee", "咖啡粉"), ("espresso beans", "意式咖啡豆"), ("instant coffee", "速溶咖啡")),
         (("arabica", "阿拉比卡"), ("medium roast", "中度烘焙"), ("dark roast", "深度烘焙"), ("single origin", "单一产地"),
          ("organic", "有机")),
         15, 0.45, {"weight": (("250 g", "250克"), ("500 g", "500克"), ("1 kg", "1公斤"))}, consumable=True, style="plain"),
    Leaf("grocery", ("Coffee & Tea", "咖啡茶饮"), ("Tea", "茶叶"),
         (("green tea", "绿茶"), ("oolong tea", "乌龙茶"), ("black tea", "红茶"), ("jasmine tea", "茉莉花茶"), ("pu-erh tea", "普洱茶")),
         (("loose leaf", "散装"), ("organic", "有机"), ("premium", "特级"), ("spring harvest", "春茶")),
         16, 0.6, {"weight": (("100 g", "100克"), ("250 g", "250克"))}, consumable=True, style="plain"),
    Leaf("grocery", ("Snacks", "休闲零食"), ("Nuts", "坚果"),
         (("mixed nuts", "混合坚果"), ("roasted almonds", "烤杏仁"), ("cashews", "腰果"), ("walnuts", "核桃")),
         (("lightly salted", "淡盐"), ("unsalted", "原味"), ("daily packs", "每日小包装"), ("organic", "有机")),
         12, 0.45, {"weight": (("500 g", "500克"), ("1 kg", "1公斤"))}, consumable=True, style="plain"),
    Leaf("grocery", ("Pantry", "粮油调味"), ("Olive Oil", "橄榄油"),
         (("extra virgin olive oil", "特级初榨橄榄油"), ("olive oil", "橄榄油"), ("olive oil spray", "橄榄油喷雾")),
         (("cold pressed", "冷榨"), ("organic", "有机"), ("imported", "进口")),
         14, 0.4, {"capacity": (("500 ml", "500毫升"), ("1 L", "1升"))}, consumable=True, style="plain"),
    # Pets
    Leaf("pets", ("Dogs", "狗狗"), ("Dog Food", "狗粮"),
         (("dry dog food", "狗粮"), ("puppy food", "幼犬粮"), ("grain-free dog food", "无谷狗粮"), ("dog treats", "狗零食")),
         (("chicken", "鸡肉味"), ("salmon", "三文鱼"), ("for small breeds", "小型犬"), ("high protein", "高蛋白")),
         30, 0.6, {"weight": (("2 kg", "2公斤"), ("5 kg", "5公斤"), ("10 kg", "10公斤"))}, consumable=True, style="plain"),
    Leaf("pets", ("Cats", "猫咪"), ("Cat Litter", "猫砂"),
         (("tofu cat litter", "豆腐猫砂"), ("clumping cat litter", "结团猫砂"), ("bentonite cat litter", "膨润土猫砂")),
         (("dust-free", "无尘"), ("odor control", "除臭"), ("flushable", "可冲马桶")),
         16, 0.4, {"weight": (("5 kg", "5公斤"), ("10 kg", "10公斤"))}, consumable=True, style="plain"),
    Leaf("pets", ("Toys & Accessories", "玩具用品"), ("Pet Toys", "宠物玩具"),
         (("cat teaser wand", "逗猫棒"), ("chew toy", "磨牙玩具"), ("interactive dog toy", "互动狗狗玩具"), ("cat scratcher", "猫抓板")),
         (("durable", "耐咬"), ("squeaky", "发声"), ("interactive", "益智")),
         10, 0.5, {"color": COLORS[:6]}),
    # Baby
    Leaf("baby", ("Diapering", "纸尿裤"), ("Diapers", "纸尿裤"),
         (("diapers", "纸尿裤"), ("pull-up pants", "拉拉裤"), ("newborn diapers", "新生儿纸尿裤")),
         (("ultra thin", "超薄"), ("breathable", "透气"), ("overnight", "夜用")),
         25, 0.35, {"size": (("NB", "NB码"), ("S", "S码"), ("M", "M码"), ("L", "L码"), ("XL", "XL码"))},
         consumable=True, style="plain"),
    Leaf("baby", ("Feeding", "喂养"), ("Baby Bottles", "奶瓶"),
         (("baby bottle", "奶瓶"), ("anti-colic bottle", "防胀气奶瓶"), ("glass baby bottle", "玻璃奶瓶"), ("sippy cup", "学饮杯")),
         (("wide neck", "宽口径"), ("BPA-free", "无双酚A"), ("newborn", "新生儿")),
         15, 0.5, {"capacity": (("150 ml", "150毫升"), ("240 ml", "240毫升"))}),
    Leaf("baby", ("Strollers", "出行"), ("Strollers", "婴儿推车"),
         (("baby stroller", "婴儿推车"), ("lightweight stroller", "轻便推车"), ("travel system", "婴儿车套装")),
         (("foldable", "可折叠"), ("reclining", "可躺"), ("all-terrain", "全地形")),
         220, 0.5, {"color": COLORS[:6]}),
)

# Modifier pairs that contradict each other; a title never carries both.
EXCLUSIVE_MODIFIERS: frozenset[frozenset[str]] = frozenset(frozenset(p) for p in (
    ("medium roast", "dark roast"), ("2-person", "4-person"), ("lightly salted", "unsalted"), ("floral", "woody"),
    ("beginner", "advanced"), ("chicken", "salmon"), ("leather", "canvas"), ("cotton", "silky"), ("elegant", "casual"),
    ("slim fit", "oversized"), ("wired", "wireless"),
))

MODEL_WORDS: tuple[str, ...] = (
    "Pro", "Max", "Lite", "Air", "Plus", "Mini", "Ultra", "Neo", "One", "Prime", "Go", "Flex", "Edge", "Core",
    "Sport", "Studio", "Nova", "Pulse", "Aero", "Zen",
)
BOOK_ADJECTIVES: tuple[Pair, ...] = (
    ("Silent", "寂静的"), ("Lost", "失落的"), ("Golden", "金色的"), ("Midnight", "午夜的"), ("Hidden", "隐秘的"),
    ("Last", "最后的"), ("Endless", "无尽的"), ("Little", "小小的"), ("Wild", "狂野的"), ("Distant", "遥远的"),
)
BOOK_NOUNS: tuple[Pair, ...] = (
    ("River", "河流"), ("Garden", "花园"), ("City", "城市"), ("Star", "星辰"), ("Ocean", "海洋"), ("Kingdom", "王国"),
    ("Forest", "森林"), ("Journey", "旅程"), ("Island", "岛屿"), ("Mountain", "山峦"), ("Lighthouse", "灯塔"), ("Summer", "夏天"),
)

# Common Chinese input-method slips: the homophone a pinyin keyboard offers first.
ZH_TYPOS: dict[str, str] = {
    "机": "鸡", "线": "限", "蓝": "兰", "精": "晶", "华": "化", "跑": "泡", "鞋": "协", "锅": "过", "咖": "卡",
    "啡": "非", "粮": "良", "垫": "电", "霜": "双", "帐": "账", "积": "机", "表": "标", "包": "宝", "茶": "查",
}

LOCALES: tuple[tuple[str, str, str, float], ...] = (
    # locale, language, country, share of shoppers
    ("en-US", "en", "US", 0.58),
    ("en-GB", "en", "GB", 0.10),
    ("zh-CN", "zh", "CN", 0.32),
)
DEVICES: tuple[str, ...] = ("mobile", "desktop", "tablet", "app")
REFERRERS: tuple[str, ...] = ("direct", "search_engine", "social", "email", "ads")
