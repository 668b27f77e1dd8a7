"""The believable salons `frontdesk demo` books in, as data: `FIRST` (English-speaking, the one
the demo has always shown) and `SECOND` (Russian-speaking, the demo's second salon). Each is
set up in a Cal.com stand-in of its own by `Seeding.seed_demo_salon`."""

from __future__ import annotations

from dataclasses import dataclass

# Hours: a weekday (0 = Monday) to "HH:MM" ranges.
Weekly = dict[int, list[tuple[str, str]]]


@dataclass(frozen=True)
class DemoMaster:
    name: str
    email: str
    weekly: Weekly
    breaks: tuple[tuple[str, str], ...]
    # Cal.com's username, from the name unless given (a Cyrillic name gives none).
    username: str | None = None


@dataclass(frozen=True)
class DemoService:
    """`offers`: each tuple of masters (indices into the salon's masters) is one event type;
    more than one tuple lets the client choose who."""

    slug: str
    title: str
    length: int
    price: int
    category: str
    offers: tuple[tuple[int, ...], ...]
    title_ru: str
    category_ru: str


@dataclass(frozen=True)
class DemoBooking:
    """A booking made before Frontdesk was installed: `days` ahead, on the master's next
    working day, at `at` on the salon's clock."""

    service: str
    master: int
    days: int
    at: str
    client: str
    phone: str


@dataclass(frozen=True)
class DemoSalon:
    team: str
    slug: str
    address: str
    masters: tuple[DemoMaster, ...]
    services: tuple[DemoService, ...]
    bookings: tuple[DemoBooking, ...] = ()


def _days(first: int, last: int, start: str = "10:00", end: str = "20:00") -> Weekly:
    return {day: [(start, end)] for day in range(first, last + 1)}


_LUNCH = (("14:00", "15:00"),)

# Every master works within the salon's opening hours, which `frontdesk demo` tells its
# clients ("Mon–Sat 10:00–20:00"): no slot on a Sunday, none ending after 20:00.
FIRST = DemoSalon(
    team="Frontdesk Demo Salon",
    slug="demo-salon",
    address="1 Example Street",
    masters=(
        DemoMaster("Anna Petrova", "anna@salon.example", _days(0, 4), _LUNCH),
        DemoMaster("Maria Ivanova", "maria@salon.example", _days(1, 5), _LUNCH),
        DemoMaster(
            "Olga Smirnova", "olga@salon.example", _days(2, 5, "11:00"), (("15:00", "16:00"),)
        ),
    ),
    # The salon's Russian words go into the event types' metadata (`title_ru`, `category_ru`).
    services=(
        DemoService(
            "womens-haircut",
            "Women's haircut",
            60,
            2500,
            "Hair",
            ((0,), (2,)),
            "Женская стрижка",
            "Волосы",
        ),
        DemoService(
            "mens-haircut",
            "Men's haircut",
            30,
            1200,
            "Hair",
            ((0, 2),),
            "Мужская стрижка",
            "Волосы",
        ),
        DemoService(
            "hair-colouring",
            "Hair colouring",
            120,
            6500,
            "Hair",
            ((0,),),
            "Окрашивание волос",
            "Волосы",
        ),
        DemoService("manicure", "Manicure", 60, 1800, "Nails", ((1,),), "Маникюр", "Ногти"),
        DemoService(
            "gel-polish", "Gel polish", 90, 2800, "Nails", ((1,),), "Покрытие гель-лаком", "Ногти"
        ),
        DemoService(
            "brow-shaping",
            "Brow shaping",
            30,
            900,
            "Brows",
            ((2,), (1,)),
            "Коррекция бровей",
            "Брови",
        ),
    ),
    bookings=(
        DemoBooking("womens-haircut", 0, 1, "12:00", "Irina Sokolova", "+79160000001"),
        DemoBooking("manicure", 1, 2, "16:00", "Elena Volkova", "+79160000002"),
        DemoBooking("brow-shaping", 2, 3, "11:30", "Daria Kuznetsova", "+79160000003"),
        DemoBooking("mens-haircut", 0, 4, "17:00", "Pavel Orlov", "+79160000004"),
    ),
)

# A Russian salon: its titles are Russian in both places, as a salon that names its services in
# one language writes them in Cal.com.
SECOND = DemoSalon(
    team="Салон «Белая сирень»",
    slug="belaya-siren",
    address="Невский проспект, 28",
    masters=(
        DemoMaster("Светлана Орлова", "svetlana@siren.example", _days(0, 5), _LUNCH, "svetlana"),
        DemoMaster(
            "Ксения Белова",
            "ksenia@siren.example",
            _days(1, 5, "11:00"),
            (("15:00", "16:00"),),
            "ksenia",
        ),
    ),
    services=(
        DemoService("strizhka", "Стрижка", 60, 2200, "Волосы", ((0,), (1,)), "Стрижка", "Волосы"),
        DemoService("ukladka", "Укладка", 45, 1500, "Волосы", ((0, 1),), "Укладка", "Волосы"),
        DemoService("pedikyur", "Педикюр", 90, 2600, "Ногти", ((1,),), "Педикюр", "Ногти"),
        DemoService(
            "massazh-lica", "Массаж лица", 40, 2000, "Уход", ((0,),), "Массаж лица", "Уход"
        ),
    ),
    bookings=(
        DemoBooking("strizhka", 0, 1, "13:00", "Тамара Лебедева", "+79160000011"),
        DemoBooking("pedikyur", 1, 2, "12:00", "Алла Федорова", "+79160000012"),
    ),
)
