"""The static material of the Berlin demo: the organization, its hub, fleet and people,
and real Berlin streets to deliver to.

The streets are real, each with the postcode and district of one stretch of it
and approximate coordinates of that stretch, compiled by hand (good to about
150-200 m, which is what a street-level geocode gives). Long streets cross
several postcodes, so the house-number range stays on the stretch given.
Phone numbers come from the block 030 23125 000-999 that the Bundesnetzagentur
keeps for film and fiction, and e-mail addresses use the reserved example
domains (RFC 2606): a demo that sends notifications never reaches a real person.
"""

from __future__ import annotations

from typing import NamedTuple

ORG_NAME = "Lastmile Demo Berlin"
ORG_SLUG = "demo"
TIMEZONE = "Europe/Berlin"
PASSWORD = "lastmile-demo"
CITY = "Berlin"
COUNTRY = "DE"
SOURCE = "demo"

SEED = 1052
ORDER_COUNT = 120
# The orders after these came in late in the morning and wait for the dispatcher.
PLANNED_COUNT = 100
# Working days before today that the demo has already delivered (reports, ETA accuracy).
HISTORY_DAYS = 6
COLD_ORDERS = 7
LOW_CONFIDENCE_ORDERS = 5
# Three drivers are out already: (route index, stops delivered, what is
# happening at the next stop).
PROGRESS = ((0, 4, "failed"), (1, 3, None), (2, 2, "arrived"))

# Drivers, staff and customers all draw from this block, one number each.
PHONE_PREFIX = "+493023125"

_WEEKDAY = [["06:00", "20:00"]]
HUB = {
    "name": "Lastmile Hub Westhafen",
    "code": "BER-WH",
    "timezone": TIMEZONE,
    # The Westhafen freight port in Moabit, Berlin's inland logistics hub, close
    # to the A100 ring motorway.
    "address_line1": "Westhafenstraße 1",
    "city": CITY,
    "postal_code": "13353",
    "region": "Berlin",
    "country": COUNTRY,
    "lat": 52.5363,
    "lng": 13.3440,
    "opening_hours": {
        "mon": _WEEKDAY, "tue": _WEEKDAY, "wed": _WEEKDAY, "thu": _WEEKDAY, "fri": _WEEKDAY,
        "sat": [["07:00", "14:00"]],
    },
}

# Payloads are the manufacturers' figures less a margin for racking; volumes are
# the usable load space. Plates carry the E suffix of German electric vehicles.
VEHICLES = [
    {"name": "eSprinter 1", "plate": "B-LM 101E", "type": "van",
     "capacity_weight_kg": 1000, "capacity_volume_l": 11000, "capacity_parcels": 130},
    {"name": "eSprinter 2", "plate": "B-LM 102E", "type": "van",
     "capacity_weight_kg": 1000, "capacity_volume_l": 11000, "capacity_parcels": 130},
    {"name": "e-Crafter 1", "plate": "B-LM 103E", "type": "van",
     "capacity_weight_kg": 950, "capacity_volume_l": 10700, "capacity_parcels": 120},
    {"name": "e-Crafter 2", "plate": "B-LM 104E", "type": "van",
     "capacity_weight_kg": 950, "capacity_volume_l": 10700, "capacity_parcels": 120},
    {"name": "eVito", "plate": "B-LM 105E", "type": "van",
     "capacity_weight_kg": 800, "capacity_volume_l": 6600, "capacity_parcels": 80},
    {"name": "E-Transit Custom", "plate": "B-LM 106E", "type": "van",
     "capacity_weight_kg": 900, "capacity_volume_l": 6800, "capacity_parcels": 80},
    # Cargo bikes have no plate in Germany.
    {"name": "Cargo bike", "plate": "", "type": "cargo_bike",
     "capacity_weight_kg": 180, "capacity_volume_l": 1500, "capacity_parcels": 40},
    {"name": "Reefer Sprinter", "plate": "B-LM 108", "type": "van",
     "capacity_weight_kg": 900, "capacity_volume_l": 8000, "capacity_parcels": 70, "skills": ["refrigerated"]},
]

# username, full name, phone, index into VEHICLES of the vehicle they drive today.
DRIVERS = [
    ("driver1", "Mehmet Yılmaz", f"{PHONE_PREFIX}901", 0),
    ("driver2", "Anna Schneider", f"{PHONE_PREFIX}902", 1),
    ("driver3", "Lukas Becker", f"{PHONE_PREFIX}903", 2),
    ("driver4", "Katarzyna Nowak", f"{PHONE_PREFIX}904", 3),
    ("driver5", "Jonas Hoffmann", f"{PHONE_PREFIX}905", 4),
    ("driver6", "Leonie Wagner", f"{PHONE_PREFIX}906", 5),
    ("driver7", "Tuan Nguyen", f"{PHONE_PREFIX}907", 6),
    ("driver8", "Sophie Krüger", f"{PHONE_PREFIX}908", 7),
]
SHIFT = ("08:00", "17:00")

# username, role, first name, last name
STAFF = [
    ("admin", "admin", "Claudia", "Brandt"),
    ("dispatcher", "dispatcher", "Deniz", "Aydın"),
]


class Street(NamedTuple):
    name: str
    postal_code: str
    district: str
    lat: float
    lng: float
    first_number: int
    last_number: int


# Weighted towards the inner city, where most parcels go; a few outer districts
# keep the map honest.
STREETS = [
    # Moabit and Tiergarten, around the hub
    Street("Turmstraße", "10559", "Moabit", 52.5263, 13.3420, 20, 80),
    Street("Alt-Moabit", "10555", "Moabit", 52.5232, 13.3330, 60, 90),
    Street("Beusselstraße", "10553", "Moabit", 52.5300, 13.3290, 30, 70),
    Street("Huttenstraße", "10553", "Moabit", 52.5265, 13.3220, 5, 60),
    Street("Stromstraße", "10551", "Moabit", 52.5290, 13.3420, 10, 60),
    Street("Perleberger Straße", "10559", "Moabit", 52.5318, 13.3520, 5, 60),
    Street("Lehrter Straße", "10557", "Moabit", 52.5300, 13.3625, 15, 60),
    Street("Lützowstraße", "10785", "Tiergarten", 52.5020, 13.3610, 20, 90),
    # Wedding and Gesundbrunnen
    Street("Müllerstraße", "13353", "Wedding", 52.5470, 13.3580, 30, 150),
    Street("Amrumer Straße", "13353", "Wedding", 52.5420, 13.3470, 5, 40),
    Street("Luxemburger Straße", "13353", "Wedding", 52.5445, 13.3530, 5, 40),
    Street("Triftstraße", "13353", "Wedding", 52.5425, 13.3560, 5, 60),
    Street("Badstraße", "13357", "Gesundbrunnen", 52.5510, 13.3830, 10, 60),
    Street("Osloer Straße", "13359", "Gesundbrunnen", 52.5570, 13.3760, 10, 110),
    Street("Prinzenallee", "13359", "Gesundbrunnen", 52.5560, 13.3835, 10, 80),
    # Mitte
    Street("Invalidenstraße", "10115", "Mitte", 52.5305, 13.3820, 30, 120),
    Street("Chausseestraße", "10115", "Mitte", 52.5320, 13.3810, 10, 130),
    Street("Torstraße", "10119", "Mitte", 52.5285, 13.4050, 60, 130),
    Street("Brunnenstraße", "10119", "Mitte", 52.5340, 13.3985, 10, 50),
    Street("Rosenthaler Straße", "10119", "Mitte", 52.5265, 13.4020, 1, 70),
    Street("Alte Schönhauser Straße", "10119", "Mitte", 52.5265, 13.4060, 5, 50),
    Street("Linienstraße", "10119", "Mitte", 52.5282, 13.4000, 100, 160),
    Street("Oranienburger Straße", "10117", "Mitte", 52.5250, 13.3940, 20, 70),
    Street("Friedrichstraße", "10117", "Mitte", 52.5150, 13.3890, 60, 200),
    Street("Leipziger Straße", "10117", "Mitte", 52.5100, 13.3880, 40, 120),
    Street("Heinrich-Heine-Straße", "10179", "Mitte", 52.5095, 13.4165, 20, 60),
    # Prenzlauer Berg
    Street("Kastanienallee", "10435", "Prenzlauer Berg", 52.5380, 13.4080, 10, 90),
    Street("Schönhauser Allee", "10437", "Prenzlauer Berg", 52.5440, 13.4125, 70, 150),
    Street("Kollwitzstraße", "10405", "Prenzlauer Berg", 52.5360, 13.4170, 30, 90),
    Street("Jablonskistraße", "10405", "Prenzlauer Berg", 52.5360, 13.4260, 1, 40),
    Street("Prenzlauer Allee", "10405", "Prenzlauer Berg", 52.5360, 13.4205, 10, 80),
    Street("Greifswalder Straße", "10405", "Prenzlauer Berg", 52.5320, 13.4290, 10, 60),
    Street("Stargarder Straße", "10437", "Prenzlauer Berg", 52.5475, 13.4170, 5, 80),
    Street("Pappelallee", "10437", "Prenzlauer Berg", 52.5455, 13.4150, 10, 90),
    Street("Wisbyer Straße", "10439", "Prenzlauer Berg", 52.5525, 13.4250, 5, 60),
    # Friedrichshain
    Street("Karl-Marx-Allee", "10243", "Friedrichshain", 52.5170, 13.4400, 70, 140),
    Street("Frankfurter Allee", "10247", "Friedrichshain", 52.5142, 13.4700, 20, 100),
    Street("Boxhagener Straße", "10245", "Friedrichshain", 52.5110, 13.4650, 20, 110),
    Street("Warschauer Straße", "10243", "Friedrichshain", 52.5100, 13.4500, 30, 80),
    Street("Simon-Dach-Straße", "10245", "Friedrichshain", 52.5095, 13.4560, 1, 45),
    Street("Grünberger Straße", "10243", "Friedrichshain", 52.5125, 13.4460, 10, 80),
    Street("Petersburger Straße", "10249", "Friedrichshain", 52.5205, 13.4520, 20, 90),
    # Kreuzberg
    Street("Oranienstraße", "10999", "Kreuzberg", 52.5008, 13.4210, 15, 45),
    Street("Wiener Straße", "10999", "Kreuzberg", 52.4985, 13.4290, 10, 60),
    Street("Skalitzer Straße", "10997", "Kreuzberg", 52.4995, 13.4360, 50, 130),
    Street("Bergmannstraße", "10961", "Kreuzberg", 52.4890, 13.3950, 10, 110),
    Street("Gneisenaustraße", "10961", "Kreuzberg", 52.4915, 13.3960, 10, 100),
    Street("Mehringdamm", "10961", "Kreuzberg", 52.4930, 13.3880, 30, 110),
    Street("Zossener Straße", "10961", "Kreuzberg", 52.4930, 13.3930, 5, 55),
    Street("Yorckstraße", "10965", "Kreuzberg", 52.4925, 13.3810, 5, 80),
    Street("Graefestraße", "10967", "Kreuzberg", 52.4935, 13.4170, 5, 90),
    Street("Kottbusser Damm", "10967", "Kreuzberg", 52.4930, 13.4210, 1, 40),
    # Neukölln
    Street("Sonnenallee", "12045", "Neukölln", 52.4850, 13.4350, 20, 110),
    Street("Weserstraße", "12047", "Neukölln", 52.4885, 13.4340, 10, 80),
    Street("Pannierstraße", "12047", "Neukölln", 52.4905, 13.4290, 5, 60),
    Street("Karl-Marx-Straße", "12043", "Neukölln", 52.4800, 13.4365, 60, 120),
    Street("Hermannstraße", "12049", "Neukölln", 52.4760, 13.4250, 60, 140),
    Street("Schillerpromenade", "12049", "Neukölln", 52.4750, 13.4220, 1, 40),
    Street("Flughafenstraße", "12053", "Neukölln", 52.4815, 13.4270, 10, 70),
    # Schöneberg, Tempelhof, Friedenau, Steglitz
    Street("Hauptstraße", "10827", "Schöneberg", 52.4880, 13.3550, 20, 150),
    Street("Akazienstraße", "10823", "Schöneberg", 52.4885, 13.3525, 5, 30),
    Street("Goltzstraße", "10781", "Schöneberg", 52.4940, 13.3515, 5, 50),
    Street("Potsdamer Straße", "10783", "Schöneberg", 52.4965, 13.3605, 130, 180),
    Street("Tempelhofer Damm", "12101", "Tempelhof", 52.4780, 13.3855, 10, 60),
    Street("Manfred-von-Richthofen-Straße", "12101", "Tempelhof", 52.4720, 13.3790, 1, 30),
    Street("Rheinstraße", "12159", "Friedenau", 52.4700, 13.3345, 10, 60),
    Street("Schloßstraße", "12163", "Steglitz", 52.4600, 13.3240, 10, 120),
    # Charlottenburg and Wilmersdorf
    Street("Kantstraße", "10623", "Charlottenburg", 52.5060, 13.3230, 20, 60),
    Street("Wilmersdorfer Straße", "10627", "Charlottenburg", 52.5080, 13.3065, 40, 110),
    Street("Bismarckstraße", "10627", "Charlottenburg", 52.5120, 13.3080, 50, 100),
    Street("Otto-Suhr-Allee", "10585", "Charlottenburg", 52.5160, 13.3040, 20, 100),
    Street("Sybelstraße", "10629", "Charlottenburg", 52.5025, 13.3030, 5, 60),
    Street("Kurfürstendamm", "10719", "Wilmersdorf", 52.5025, 13.3270, 20, 60),
    Street("Uhlandstraße", "10719", "Wilmersdorf", 52.4990, 13.3245, 150, 180),
    Street("Berliner Straße", "10715", "Wilmersdorf", 52.4870, 13.3230, 20, 60),
    Street("Bundesallee", "10715", "Wilmersdorf", 52.4800, 13.3290, 80, 130),
    # Outer districts
    Street("Carl-Schurz-Straße", "13597", "Spandau", 52.5370, 13.2030, 5, 50),
    Street("Klosterstraße", "13581", "Spandau", 52.5340, 13.1990, 10, 60),
    Street("Gorkistraße", "13507", "Tegel", 52.5885, 13.2850, 5, 60),
    Street("Residenzstraße", "13409", "Reinickendorf", 52.5625, 13.3690, 20, 120),
    Street("Breite Straße", "13187", "Pankow", 52.5690, 13.4030, 5, 40),
    Street("Florastraße", "13187", "Pankow", 52.5620, 13.4040, 10, 90),
    Street("Weitlingstraße", "10317", "Lichtenberg", 52.5095, 13.4985, 5, 60),
    Street("Frankfurter Allee", "10365", "Lichtenberg", 52.5145, 13.4960, 180, 230),
    Street("Karl-Kunger-Straße", "12435", "Alt-Treptow", 52.4905, 13.4530, 5, 60),
    Street("Bahnhofstraße", "12555", "Köpenick", 52.4520, 13.5790, 5, 60),
    Street("Alt-Köpenick", "12555", "Köpenick", 52.4445, 13.5755, 5, 35),
    Street("Marzahner Promenade", "12679", "Marzahn", 52.5440, 13.5440, 1, 50),
    Street("Teltower Damm", "14169", "Zehlendorf", 52.4340, 13.2590, 10, 60),
]

# Berlin's customers as they are: German names alongside Turkish, Polish,
# Vietnamese, Arabic, Italian and Russian ones.
FIRST_NAMES = [
    "Anna", "Lukas", "Marie", "Felix", "Sophie", "Jonas", "Emma", "Paul", "Hannah", "Elias", "Mia", "Noah",
    "Lea", "Ben", "Clara", "Emil", "Ida", "Maximilian", "Sabine", "Thomas", "Ursula", "Klaus", "Petra",
    "Jürgen", "Monika", "Stefan", "Julia", "Tobias", "Sarah", "Martin", "Ayşe", "Mehmet", "Elif", "Yusuf",
    "Deniz", "Katarzyna", "Piotr", "Agnieszka", "Thi Hoa", "Minh", "Fatima", "Omar", "Leyla", "Giulia",
    "Marco", "Olga", "Dmitri", "Ahmad", "Nina", "Jan",
]
LAST_NAMES = [
    "Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Schulz", "Hoffmann",
    "Koch", "Richter", "Klein", "Wolf", "Schröder", "Neumann", "Schwarz", "Zimmermann", "Braun", "Krüger",
    "Hartmann", "Lange", "Werner", "Krause", "Lehmann", "Köhler", "Schulze", "Günther", "Yılmaz", "Kaya",
    "Demir", "Şahin", "Öztürk", "Nowak", "Kowalczyk", "Wójcik", "Nguyen", "Tran", "Pham", "Haddad",
    "Khalil", "Rossi", "Bianchi", "Ivanov", "Novak", "Peters",
]
EMAIL_DOMAINS = ["example.com", "example.org", "example.net"]


class Product(NamedTuple):
    sku: str
    description: str
    weight_kg: float
    volume_l: float
    refrigerated: bool = False
    valuable: bool = False


# Small parcels dominate, as they do in e-commerce; the catalogue spans the
# 0.2-25 kg a single courier parcel may weigh.
PRODUCTS = [
    Product("BK-1042", "Paperback novel", 0.4, 1.0),
    Product("BK-2210", "Cookbook, hardcover", 1.2, 2.5),
    Product("AP-3301", "T-shirt, organic cotton", 0.25, 1.5),
    Product("AP-3550", "Running shoes", 1.1, 9.0),
    Product("AP-3710", "Winter jacket", 1.6, 14.0),
    Product("EL-4100", "Wireless headphones", 0.6, 3.0, valuable=True),
    Product("EL-4420", "Laptop 14 inch", 2.4, 9.0, valuable=True),
    Product("EL-4870", "Monitor 27 inch", 7.5, 45.0, valuable=True),
    Product("EL-4990", "Smartphone", 0.5, 1.5, valuable=True),
    Product("HM-5120", "Coffee grinder", 1.8, 6.0),
    Product("HM-5300", "Bed linen set", 2.2, 10.0),
    Product("HM-5650", "Floor lamp", 6.5, 60.0),
    Product("HM-5900", "Office chair", 18.0, 160.0),
    Product("GR-6010", "Mineral water, 6 x 1.5 l", 9.5, 12.0),
    Product("GR-6400", "Cat litter, 20 l bag", 12.0, 22.0),
    Product("DY-7100", "Cordless drill", 2.9, 8.0),
    Product("DY-7450", "Wall paint, 10 l bucket", 13.5, 11.0),
    Product("SP-8100", "Yoga mat", 1.3, 8.0),
    Product("SP-8600", "Child bike trailer", 24.0, 150.0),
    Product("PH-9010", "Vitamin supplements", 0.3, 0.8),
]
# Only the reefer van carries these.
COLD_PRODUCTS = [
    Product("CF-9100", "Meal kit, 4 portions", 4.5, 18.0, refrigerated=True),
    Product("CF-9200", "Frozen food box", 6.0, 24.0, refrigerated=True),
    Product("CF-9300", "Insulin pens, pharmacy delivery", 0.3, 2.0, refrigerated=True, valuable=True),
    Product("CF-9400", "Dairy and cheese box", 3.5, 12.0, refrigerated=True),
]

SHOPS = ["Kiezkaufhaus", "Spreegrün Bio", "Nordlicht Elektronik", "Buchhandlung am Kanal", "Hausrat24"]

# Local delivery slots the shops offer at checkout, as (start, end) hours.
SLOTS = [(8, 10), (10, 12), (12, 14), (14, 16), (16, 18), (8, 11), (11, 14), (14, 17), (15, 18)]

ADDRESS_LINE2 = [
    "Hinterhaus, 2. OG", "Seitenflügel links, 4. OG", "Vorderhaus, EG", "Aufgang B, 3. OG",
    "Gartenhaus, 1. OG", "Dachgeschoss",
]

INSTRUCTIONS = [
    "Leave with neighbour if not home.",
    "Gate code {code}, then second door on the left.",
    "Courtyard entrance, door code {code}.",
    "Please call 10 minutes before arrival.",
    "Doorbell says {last_name}.",
    "No lift, 4th floor.",
    "Deliver to the shop on the ground floor.",
    "Do not leave at the door.",
    "Bitte beim Nachbarn abgeben.",
    "Dog in the garden, please ring first.",
]
