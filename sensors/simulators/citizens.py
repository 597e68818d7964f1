"""Citizens' field reports (phản ánh hiện trường) in their own words: pure, seeded `CitizenReport` builders.

Categories come from the reference model (`report_categories`), texts are Vietnamese as citizens write
them in the app or tell the 1022 hotline, places are real streets of the district near the ward's marker
point, and contacts are invented (fake names and numbers). The planner (`plan`) decides when reports
arrive; the flood scenario asks for `flood_report`s in the flooded wards.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Mapping, Sequence
from typing import Final, Literal

from ioc.events import CitizenReport, Contact
from sensors.simulators.fleet import FleetUnit

__all__ = [
    "CATEGORY_WEIGHTS",
    "citizen_report",
    "fake_contact",
    "flood_report",
    "report_text",
]

Source = Literal["app", "open311", "hotline", "web", "social"]

# How often each category comes up among ordinary reports; a category of the reference model missing
# here gets weight 1 and a generic text.
CATEGORY_WEIGHTS: Final[Mapping[str, float]] = {
    "waste": 20,
    "infrastructure": 20,
    "traffic": 15,
    "public_order": 10,
    "construction": 10,
    "pollution": 8,
    "flooding": 5,
    "public_services": 5,
    "other": 5,
}

_SOURCES: Final[tuple[tuple[Source, float], ...]] = (("app", 0.5), ("hotline", 0.25), ("web", 0.2), ("open311", 0.05))

# Real streets of each district (2024 tree), so addresses read like the place.
_STREETS: Final[Mapping[str, tuple[str, ...]]] = {
    "718": ("Đại lộ Bình Dương", "Cách Mạng Tháng Tám", "Yersin", "Phú Lợi", "Huỳnh Văn Lũy", "Lê Hồng Phong"),
    "719": ("Quốc lộ 13", "ĐT 749A", "ĐT 750"),
    "720": ("ĐT 744", "ĐT 749B", "Đường 13/3"),
    "721": ("Quốc lộ 13", "ĐT 741", "Mỹ Phước - Tân Vạn", "Hùng Vương"),
    "722": ("ĐT 741", "ĐT 750", "Hùng Vương"),
    "723": ("ĐT 746", "ĐT 747", "Huỳnh Văn Lũy", "Nguyễn Khuyến"),
    "724": ("Quốc lộ 1K", "Xa lộ Hà Nội", "Nguyễn An Ninh", "Trần Hưng Đạo", "Lý Thường Kiệt", "Mỹ Phước - Tân Vạn"),
    "725": ("Đại lộ Bình Dương", "Nguyễn Văn Tiết", "Thủ Khoa Huân", "Cách Mạng Tháng Tám", "Phan Đình Phùng"),
    "726": ("ĐT 746", "ĐT 741", "ĐT 747B"),
}
_LANDMARKS: Final = (
    "chợ {short}",
    "trường tiểu học {short}",
    "nhà văn hóa khu phố {k}",
    "trạm y tế {ward}",
    "công viên khu phố {k}",
    "cổng trường THCS {short}",
)

_TEXTS: Final[Mapping[str, tuple[str, ...]]] = {
    "flooding": (
        "Đường {street} đoạn gần {landmark} ngập khoảng {depth} cm sau mưa, xe máy chết máy hàng loạt, "
        "đề nghị kiểm tra hệ thống thoát nước.",
        "Nước tràn vào nhà dân trong hẻm {alley} đường {street}, {ward}. Bà con cần hỗ trợ kê dọn đồ đạc.",
        "Ngập sâu tại ngã tư {street}, nhiều xe chết máy giữa đường, giao thông ùn ứ.",
    ),
    "pollution": (
        "Khói bụi và mùi hôi nồng nặc từ nhà xưởng gần đường {street}, người dân khó thở, đề nghị kiểm tra.",
        "Xe chở vật liệu không che chắn làm bụi mù mịt trên đường {street} đoạn gần {landmark}.",
        "Buổi tối có mùi khét như đốt rác, đốt nhựa ở khu vực {landmark}, {ward}.",
    ),
    "waste": (
        "Rác thải sinh hoạt tập kết trên vỉa hè đường {street} nhiều ngày chưa thu gom, bốc mùi hôi thối.",
        "Có người đổ trộm xà bần, rác xây dựng bên đường {street} gần {landmark}.",
        "Thùng rác công cộng trước {landmark} bị đầy tràn, chó mèo bới rác ra đường.",
    ),
    "traffic": (
        "Đèn tín hiệu giao thông tại giao lộ {street} bị hỏng, xe cộ đi lộn xộn rất nguy hiểm.",
        "Ùn tắc kéo dài giờ cao điểm trên đường {street}, đề nghị bố trí lực lượng điều tiết.",
        "Ổ gà lớn giữa đường {street} đoạn gần {landmark}, nhiều người đi xe máy bị té ngã.",
    ),
    "infrastructure": (
        "Đèn chiếu sáng công cộng trên đường {street} không hoạt động, ban đêm tối om, mất an toàn.",
        "Nắp cống bị vỡ trên vỉa hè đường {street} gần {landmark}, rất nguy hiểm cho người đi bộ.",
        "Cây xanh nghiêng, có nguy cơ ngã đổ trên đường {street}, đề nghị cắt tỉa kịp thời.",
    ),
    "public_order": (
        "Nhóm thanh niên tụ tập, nẹt pô gây ồn ào sau 23 giờ tại khu vực {landmark}.",
        "Quán karaoke trên đường {street} mở nhạc lớn đến khuya, ảnh hưởng giấc ngủ người dân.",
    ),
    "construction": (
        "Công trình xây dựng trên đường {street} lấn chiếm vỉa hè, không có rào chắn an toàn.",
        "Công trình thi công ban đêm gây ồn, vật liệu rơi vãi ra đường {street} gần {landmark}.",
    ),
    "public_services": (
        "Tôi nộp hồ sơ đăng ký khai sinh trực tuyến cho con đã quá ngày hẹn nhưng chưa nhận được kết quả.",
        "Bộ phận một cửa {ward} đông người, phải chờ lâu, đề nghị bố trí thêm cán bộ tiếp nhận.",
    ),
    "other": (
        "Đề nghị bố trí thêm ghế đá và thùng rác công cộng tại {landmark}.",
        "Chó thả rông không rọ mõm ở khu vực {landmark}, người dân lo ngại.",
    ),
}
_GENERIC: Final = "Phản ánh về {label} tại đường {street}, {ward}: đề nghị cơ quan chức năng kiểm tra, xử lý."

# Texts the flood scenario sends, in the order it sends them.
_FLOOD_TEXTS: Final = (
    "Nước dâng rất nhanh trên đường {street} đoạn gần {landmark}, đã ngập quá bánh xe máy, nhiều xe chết máy.",
    "Hẻm {alley} đường {street}, {ward} ngập sâu khoảng {depth} cm, nước tràn vào nhà dân, cần hỗ trợ gấp.",
    "Ngập nặng tại ngã tư {street}, xe cộ kẹt cứng, đề nghị {ward} cử người phân luồng và bơm thoát nước.",
)

_FAMILY: Final = ("Nguyễn", "Trần", "Lê", "Phạm", "Huỳnh", "Hoàng", "Võ", "Đặng", "Bùi", "Đỗ", "Hồ", "Ngô", "Dương")
_MIDDLE: Final = ("Văn", "Thị", "Minh", "Ngọc", "Thanh", "Hoàng", "Quốc", "Thu", "Hữu", "Kim")
_GIVEN: Final = (
    "An", "Bình", "Cường", "Dũng", "Hà", "Hạnh", "Hùng", "Lan", "Linh",
    "Mai", "Nam", "Phúc", "Quân", "Tâm", "Trang", "Tuấn", "Vy", "Yến",
)  # fmt: skip
_MOBILE_PREFIXES: Final = ("090", "091", "093", "094", "096", "097", "098", "032", "035", "038", "070", "077", "083")


def _short_name(unit: FleetUnit) -> str:
    # "phường Đông Hòa" → "Đông Hòa"
    return unit.name.split(" ", 1)[1] if " " in unit.name else unit.name


def _fill(template: str, unit: FleetUnit, rng: random.Random, label: str = "") -> str:
    streets = _STREETS.get(unit.district, ("liên xã",))
    k = rng.randint(1, 9)
    landmark = rng.choice(_LANDMARKS).format(short=_short_name(unit), k=k, ward=unit.name)
    return template.format(
        street=rng.choice(streets),
        landmark=landmark,
        ward=unit.name,
        alley=f"{rng.randint(2, 120)}/{rng.randint(1, 30)}",
        depth=rng.choice((30, 40, 50, 60)),
        label=label,
    )


def report_text(category: str, unit: FleetUnit, rng: random.Random, label_vi: str = "") -> str:
    """A citizen's words for `category` in `unit` (Vietnamese)."""
    templates = _TEXTS.get(category)
    if templates is None:
        return _fill(_GENERIC, unit, rng, label_vi.lower() or category)
    return _fill(rng.choice(templates), unit, rng)


def fake_contact(rng: random.Random) -> Contact:
    """An invented reporter: a Vietnamese name and a mobile number in the usual 10-digit shape."""
    name = f"{rng.choice(_FAMILY)} {rng.choice(_MIDDLE)} {rng.choice(_GIVEN)}"
    digits = f"{rng.randrange(10_000_000):07d}"
    phone = f"{rng.choice(_MOBILE_PREFIXES)}{digits[0]} {digits[1:4]} {digits[4:]}"
    return Contact(name=name, phone=phone)


def _address(unit: FleetUnit, rng: random.Random) -> str:
    street = rng.choice(_STREETS.get(unit.district, ("liên xã",)))
    return f"{rng.randint(1, 400)} đường {street}, khu phố {rng.randint(1, 9)}, {unit.name}, {unit.district_name}"


def citizen_report(
    rng: random.Random,
    *,
    report_id: str,
    unit: FleetUnit,
    at: dt.datetime,
    categories: Sequence[str],
    labels_vi: Mapping[str, str] | None = None,
) -> CitizenReport:
    """An ordinary report from `unit` at `at`, its category drawn from `categories`."""
    category = rng.choices(list(categories), weights=[CATEGORY_WEIGHTS.get(c, 1.0) for c in categories])[0]
    text = report_text(category, unit, rng, (labels_vi or {}).get(category, ""))
    return _report(rng, report_id=report_id, unit=unit, at=at, category=category, text=text)


def flood_report(rng: random.Random, *, report_id: str, unit: FleetUnit, at: dt.datetime, index: int) -> CitizenReport:
    """The flood scenario's `index`-th report (0, 1, 2, ...): flooding, always located, from the app."""
    text = _fill(_FLOOD_TEXTS[index % len(_FLOOD_TEXTS)], unit, rng)
    return _report(
        rng, report_id=report_id, unit=unit, at=at, category="flooding", text=text, source="app", located=True
    )


def _report(
    rng: random.Random,
    *,
    report_id: str,
    unit: FleetUnit,
    at: dt.datetime,
    category: str,
    text: str,
    source: Source | None = None,
    located: bool = False,
) -> CitizenReport:
    source = source or rng.choices([s for s, _ in _SOURCES], weights=[w for _, w in _SOURCES])[0]
    # Apps send the phone's position; hotline operators type an address instead.
    has_position = located or source in ("app", "open311")
    contact = fake_contact(rng) if source == "hotline" or rng.random() < 0.6 else None
    return CitizenReport(
        report_id=report_id,
        source=source,
        category=category,
        unit=unit.code,
        submitted_at=at,
        text=text,
        lat=round(unit.lat + rng.uniform(-0.004, 0.004), 6) if has_position else None,
        lon=round(unit.lon + rng.uniform(-0.004, 0.004), 6) if has_position else None,
        address=_address(unit, rng),
        media_urls=[f"https://media.ioc-citizen.example/{report_id}/1.jpg"] if rng.random() < 0.4 else [],
        contact=contact,
    )
