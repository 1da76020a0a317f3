//! Word lists for realistic generated records.

use rand::rngs::StdRng;
use rand::Rng;

pub const FIRST_NAMES: &[&str] = &[
    "Ada", "Ben", "Carla", "Dmitri", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jonas", "Kaisa", "Liam", "Maria", "Nils", "Olga", "Pedro",
    "Quinn", "Rosa", "Sven", "Tariq", "Uma", "Viktor", "Wen", "Ximena", "Yusuf", "Zoe",
];

pub const LAST_NAMES: &[&str] = &[
    "Tamm", "Smith", "Garcia", "Kask", "Müller", "Rossi", "Nowak", "Silva", "Dubois", "Okafor", "Sato", "Larsen", "Novak", "Haddad", "Kim",
    "Berg", "Costa", "Ivanova", "Walsh", "Mägi",
];

pub const COMPANY_STEMS: &[&str] = &[
    "Bolt",
    "Nordic",
    "Acme",
    "Zylker",
    "Tallinn",
    "Harbour",
    "Summit",
    "Blue River",
    "Granite",
    "Lumen",
    "Orbit",
    "Keystone",
    "Meadow",
    "Pioneer",
    "Quartz",
    "Redwood",
    "Silverline",
    "Trident",
    "Vertex",
    "Willow",
];

pub const COMPANY_SUFFIXES: &[&str] = &["Ltd", "OÜ", "GmbH", "Inc", "AS", "LLC", "Group", "Partners"];

pub const CITIES: &[(&str, &str, &str)] = &[
    ("Tallinn", "Harju maakond", "Estonia"),
    ("Tartu", "Tartu maakond", "Estonia"),
    ("Paris", "Île-de-France", "France"),
    ("Berlin", "Berlin", "Germany"),
    ("London", "England", "United Kingdom"),
    ("Sunnyvale", "CA", "USA"),
    ("Lisbon", "Lisboa", "Portugal"),
];

pub const STREETS: &[&str] = &[
    "Mustamäe tee",
    "Main St",
    "Narva mnt",
    "Rue de Rivoli",
    "Unter den Linden",
    "High St",
];

pub const SUBJECTS: &[&str] = &[
    "Cannot log in to the portal",
    "Invoice shows the wrong amount",
    "Real Time analysis Requirement",
    "Delay in the processing of the orders",
    "Printer offline on floor 2",
    "Request for new dataset access",
    "VPN disconnects every hour",
    "Password reset not arriving",
    "Upgrade request for licences",
    "Email bounces from customer domain",
];

pub const CURRENCIES: &[&str] = &["EUR", "USD", "GBP"];

/// A person's first and last name.
pub fn person_name(rng: &mut StdRng) -> (String, String) {
    let first = FIRST_NAMES[rng.random_range(0..FIRST_NAMES.len())];
    let last = LAST_NAMES[rng.random_range(0..LAST_NAMES.len())];
    (first.to_string(), last.to_string())
}

/// A company name.
pub fn company_name(rng: &mut StdRng) -> String {
    let stem = COMPANY_STEMS[rng.random_range(0..COMPANY_STEMS.len())];
    let suffix = COMPANY_SUFFIXES[rng.random_range(0..COMPANY_SUFFIXES.len())];
    format!("{stem} {suffix}")
}

/// An email address for a name at a domain.
pub fn email(first: &str, last: &str, domain: &str) -> String {
    let clean = |text: &str| -> String {
        text.chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_lowercase()
    };
    format!("{}.{}@{}", clean(first), clean(last), domain)
}

/// A phone number.
pub fn phone(rng: &mut StdRng) -> String {
    format!("+372 5{:03} {:04}", rng.random_range(0..1000), rng.random_range(0..10_000))
}

/// Lowercase hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// A random UUID-shaped string (version 4 layout).
pub fn uuid(rng: &mut StdRng) -> String {
    let a: u32 = rng.random();
    let b: u16 = rng.random();
    let c: u16 = (rng.random::<u16>() & 0x0fff) | 0x4000;
    let d: u16 = (rng.random::<u16>() & 0x3fff) | 0x8000;
    let e: u64 = rng.random::<u64>() & 0xffff_ffff_ffff;
    format!("{a:08x}-{b:04x}-{c:04x}-{d:04x}-{e:012x}")
}
