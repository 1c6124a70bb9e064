//! Synthetic users computed from (seed, index, epoch) on demand, and their JSON written by
//! hand: nothing is stored, so a million users cost no memory and a page costs microseconds.

use std::io::Write as _;

/// Okta's spelling of the statuses, indexed by status code (same order as `UserStatus::ALL`).
pub(crate) const STATUS_NAMES: [&str; 8] = [
    "STAGED",
    "PROVISIONED",
    "ACTIVE",
    "RECOVERY",
    "PASSWORD_EXPIRED",
    "LOCKED_OUT",
    "SUSPENDED",
    "DEPROVISIONED",
];
pub(crate) const STAGED: u8 = 0;
pub(crate) const PROVISIONED: u8 = 1;
pub(crate) const ACTIVE: u8 = 2;
pub(crate) const DEPROVISIONED: u8 = 7;

/// (display, ascii for the login)
const FIRST_NAMES: [(&str, &str); 32] = [
    ("Alice", "alice"),
    ("Zoë", "zoe"),
    ("Łukasz", "lukasz"),
    ("José", "jose"),
    ("Amélie", "amelie"),
    ("Søren", "soren"),
    ("Björn", "bjorn"),
    ("Chloé", "chloe"),
    ("Mohammed", "mohammed"),
    ("Priya", "priya"),
    ("Wei", "wei"),
    ("Yuki", "yuki"),
    ("Olusegun", "olusegun"),
    ("Fatima", "fatima"),
    ("Mateo", "mateo"),
    ("Ingrid", "ingrid"),
    ("Siobhán", "siobhan"),
    ("Dmitri", "dmitri"),
    ("Ana", "ana"),
    ("Kwame", "kwame"),
    ("Ngọc", "ngoc"),
    ("Renée", "renee"),
    ("Jürgen", "jurgen"),
    ("Aisha", "aisha"),
    ("Carlos", "carlos"),
    ("Elif", "elif"),
    ("Hannah", "hannah"),
    ("Ravi", "ravi"),
    ("Sofía", "sofia"),
    ("Tomás", "tomas"),
    ("Emma", "emma"),
    ("Noah", "noah"),
];

const LAST_NAMES: [(&str, &str); 32] = [
    ("Smith", "smith"),
    ("Nguyễn", "nguyen"),
    ("García", "garcia"),
    ("Müller", "muller"),
    ("Kowalski", "kowalski"),
    ("O'Brien", "obrien"),
    ("Øvergaard", "overgaard"),
    ("Rossi", "rossi"),
    ("Dubois", "dubois"),
    ("Yılmaz", "yilmaz"),
    ("Tanaka", "tanaka"),
    ("Kim", "kim"),
    ("Okafor", "okafor"),
    ("Haddad", "haddad"),
    ("Fernández", "fernandez"),
    ("Johansson", "johansson"),
    ("Novák", "novak"),
    ("Ivanova", "ivanova"),
    ("Silva", "silva"),
    ("Mensah", "mensah"),
    ("Patel", "patel"),
    ("Chen", "chen"),
    ("Williams", "williams"),
    ("Brown", "brown"),
    ("Łukasiewicz", "lukasiewicz"),
    ("Schröder", "schroder"),
    ("López", "lopez"),
    ("Nakamura", "nakamura"),
    ("Andersen", "andersen"),
    ("Costa", "costa"),
    ("Walsh", "walsh"),
    ("Zhang", "zhang"),
];

const DEPARTMENTS: [&str; 8] = [
    "Engineering",
    "Sales",
    "Marketing",
    "Finance",
    "Support",
    "Operations",
    "Legal",
    "Human Resources",
];

/// 2025-01-01T00:00:00Z: epoch 0 of the simulated org; every epoch is one day later.
pub(crate) const EPOCH_ZERO: i64 = 1_735_689_600;
const DAY: i64 = 86_400;
/// Per epoch, this many users in 1,000 change status.
const CHANGES_PER_MILLE: u64 = 20;

/// The simulated org: `base` users at epoch 0, a few more per epoch.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Population {
    pub seed: u64,
    pub base: u64,
    pub epoch: u64,
    id_tag: [u8; 6],
    /// The number behind the first user's id, and the step between consecutive users' ids.
    id_offset: u64,
    id_stride: u64,
}

/// One user's attributes (dates in epoch seconds); names by index into the tables.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SimUser {
    pub index: u64,
    pub status: u8,
    pub created: i64,
    pub activated: Option<i64>,
    pub status_changed: Option<i64>,
    pub last_login: Option<i64>,
    pub last_updated: i64,
    pub password_changed: Option<i64>,
    first: usize,
    last: usize,
    department: usize,
}

impl Population {
    pub(crate) fn new(seed: u64, base: u64, epoch: u64) -> Self {
        let mut id_tag = [0u8; 6];
        let mut tag = mix(seed ^ 0x1d_7a9);
        for b in &mut id_tag {
            *b = BASE62[(tag % 62) as usize];
            tag /= 62;
        }
        let spread = mix(seed ^ 0x5EED_0FF5);
        Population {
            seed,
            base,
            epoch,
            id_tag,
            id_offset: spread % ID_OFFSET_RANGE,
            id_stride: ID_STRIDE_MIN + (spread >> 40) % ID_STRIDE_MIN,
        }
    }

    /// Users added per epoch (about 0.2 % of the base, at least one).
    fn added_per_epoch(&self) -> u64 {
        (self.base / 500).max(1)
    }

    /// Number of users at this epoch.
    pub(crate) fn total(&self) -> u64 {
        self.base + self.epoch * self.added_per_epoch()
    }

    fn hash(&self, index: u64, salt: u64) -> u64 {
        mix(self
            .seed
            .wrapping_add(salt.wrapping_mul(0x9E37_79B9_7F4A_7C15))
            ^ index.wrapping_mul(0xD1B5_4A32_D192_ED03))
    }

    /// The epoch a user was created in (0 for the base population).
    fn born(&self, index: u64) -> u64 {
        if index < self.base {
            0
        } else {
            1 + (index - self.base) / self.added_per_epoch()
        }
    }

    /// The status at this epoch and the epoch of the last change (if any after birth).
    fn status_and_change(&self, index: u64) -> (u8, Option<u64>) {
        let born = self.born(index);
        for k in (born + 1..=self.epoch).rev() {
            let h = self.hash(index, 1000 + k);
            if h % 1000 < CHANGES_PER_MILLE {
                return (draw_status(h / 1000), Some(k));
            }
        }
        let h = self.hash(index, 1);
        let status = if born == 0 {
            draw_status(h)
        } else {
            // Newcomers are mostly not active yet.
            [STAGED, PROVISIONED, ACTIVE, ACTIVE][(h % 4) as usize]
        };
        (status, None)
    }

    /// Just the status: the hot path of filtering.
    pub(crate) fn status(&self, index: u64) -> u8 {
        self.status_and_change(index).0
    }

    pub(crate) fn user(&self, index: u64) -> SimUser {
        let (status, changed_at) = self.status_and_change(index);
        let born = self.born(index);
        let h = self.hash(index, 2);
        let created = if born == 0 {
            EPOCH_ZERO - DAY - (h % (5 * 365 * DAY as u64)) as i64
        } else {
            EPOCH_ZERO + born as i64 * DAY - ((h >> 20) % DAY as u64) as i64
        };
        let never_activated = matches!(status, STAGED | PROVISIONED);
        let activated = (!never_activated).then(|| created + ((h >> 8) % (3 * DAY as u64)) as i64);
        let now = EPOCH_ZERO + self.epoch as i64 * DAY;
        let status_changed = match changed_at {
            Some(k) => Some(EPOCH_ZERO + k as i64 * DAY - ((h >> 24) % 3600) as i64),
            None if status == STAGED => None,
            None => Some(activated.unwrap_or(created + 60)),
        };
        let h2 = self.hash(index, 3);
        let last_login = match activated {
            Some(a) if h2 % 100 >= 15 => {
                let span = (now - a).max(1) as u64;
                Some(a + ((h2 >> 8) % span) as i64)
            }
            _ => None,
        };
        let password_changed = activated;
        let last_updated = [Some(created), status_changed, password_changed]
            .into_iter()
            .flatten()
            .max()
            .unwrap_or(created);
        let h3 = self.hash(index, 4);
        SimUser {
            index,
            status,
            created,
            activated,
            status_changed,
            last_login,
            last_updated,
            password_changed,
            first: (h3 % FIRST_NAMES.len() as u64) as usize,
            last: ((h3 >> 16) % LAST_NAMES.len() as u64) as usize,
            department: ((h3 >> 32) % DEPARTMENTS.len() as u64) as usize,
        }
    }

    /// The user id (`00u` + 17 characters), a bijection of the index for this seed.
    ///
    /// Ids grow with the index (a seeded offset plus the index times a seeded stride, in
    /// fixed-width base62 whose digits sort like their values), so every cursor lists users
    /// in ascending id order, as Okta's keyset pagination does: the `after` cursor is the
    /// last id served and the next page starts above it.
    pub(crate) fn id(&self, index: u64) -> [u8; 20] {
        let mut id = [0u8; 20];
        id[..3].copy_from_slice(b"00u");
        id[3..9].copy_from_slice(&self.id_tag);
        let mut n = self.id_number(index);
        for slot in id[9..].iter_mut().rev() {
            *slot = BASE62[(n % 62) as usize];
            n /= 62;
        }
        id
    }

    /// The index of a user id of this population, if it is one.
    pub(crate) fn index_of(&self, id: &str) -> Option<u64> {
        let bytes = id.as_bytes();
        if bytes.len() != 20 || &bytes[..3] != b"00u" || bytes[3..9] != self.id_tag {
            return None;
        }
        let mut n: u64 = 0;
        for &b in &bytes[9..] {
            let digit = BASE62.iter().position(|&c| c == b)? as u64;
            n = n.checked_mul(62)?.checked_add(digit)?;
        }
        let steps = n.checked_sub(self.id_offset)?;
        if steps % self.id_stride != 0 {
            return None;
        }
        let index = steps / self.id_stride;
        (index < self.total()).then_some(index)
    }

    /// The number an id spells: offset + index × stride (below 2^64 for any index under
    /// 8 × 10^12, far beyond any simulated org).
    fn id_number(&self, index: u64) -> u64 {
        self.id_offset
            .wrapping_add(index.wrapping_mul(self.id_stride))
    }

    pub(crate) fn login(&self, user: &SimUser) -> String {
        format!(
            "{}.{}{}@example.com",
            FIRST_NAMES[user.first].1, LAST_NAMES[user.last].1, user.index
        )
    }

    pub(crate) fn first_name(&self, user: &SimUser) -> &'static str {
        FIRST_NAMES[user.first].0
    }

    pub(crate) fn last_name(&self, user: &SimUser) -> &'static str {
        LAST_NAMES[user.last].0
    }

    /// Appends the user as Okta JSON. `base_url` (no trailing slash) goes into `_links`.
    pub(crate) fn write_json(&self, out: &mut Vec<u8>, user: &SimUser, base_url: &str) {
        let id = self.id(user.index);
        out.extend_from_slice(b"{\"id\":\"");
        out.extend_from_slice(&id);
        out.extend_from_slice(b"\",\"status\":\"");
        out.extend_from_slice(STATUS_NAMES[user.status as usize].as_bytes());
        out.extend_from_slice(b"\",\"created\":");
        write_date(out, Some(user.created));
        out.extend_from_slice(b",\"activated\":");
        write_date(out, user.activated);
        out.extend_from_slice(b",\"statusChanged\":");
        write_date(out, user.status_changed);
        out.extend_from_slice(b",\"lastLogin\":");
        write_date(out, user.last_login);
        out.extend_from_slice(b",\"lastUpdated\":");
        write_date(out, Some(user.last_updated));
        out.extend_from_slice(b",\"passwordChanged\":");
        write_date(out, user.password_changed);
        out.extend_from_slice(
            b",\"type\":{\"id\":\"oty1simulatedtype0g4\"},\"profile\":{\"firstName\":\"",
        );
        out.extend_from_slice(FIRST_NAMES[user.first].0.as_bytes());
        out.extend_from_slice(b"\",\"lastName\":\"");
        // Names contain no characters that JSON needs escaped (checked by a test).
        out.extend_from_slice(LAST_NAMES[user.last].0.as_bytes());
        out.extend_from_slice(b"\",\"mobilePhone\":null,\"secondEmail\":null,\"login\":\"");
        let login_start = out.len();
        let (first, last) = (FIRST_NAMES[user.first].1, LAST_NAMES[user.last].1);
        let _ = write!(out, "{first}.{last}{}@example.com", user.index);
        let login_end = out.len();
        out.extend_from_slice(b"\",\"email\":\"");
        out.extend_from_within(login_start..login_end);
        out.extend_from_slice(b"\",\"department\":\"");
        out.extend_from_slice(DEPARTMENTS[user.department].as_bytes());
        out.extend_from_slice(
            b"\"},\"credentials\":{\"password\":{},\"provider\":{\"type\":\"OKTA\",\"name\":\"OKTA\"}},\"_links\":{\"self\":{\"href\":\"",
        );
        out.extend_from_slice(base_url.as_bytes());
        out.extend_from_slice(b"/api/v1/users/");
        out.extend_from_slice(&id);
        out.extend_from_slice(b"\"}}}");
    }
}

/// The epoch-0 status mix: ~80 % ACTIVE, 6 % DEPROVISIONED, every other status 1.5–3 %.
fn draw_status(h: u64) -> u8 {
    match h % 10_000 {
        0..8_000 => ACTIVE,
        8_000..8_600 => DEPROVISIONED,
        8_600..8_900 => STAGED,
        8_900..9_200 => PROVISIONED,
        9_200..9_500 => 6, // SUSPENDED
        9_500..9_700 => 5, // LOCKED_OUT
        9_700..9_850 => 3, // RECOVERY
        _ => 4,            // PASSWORD_EXPIRED
    }
}

/// Ids start below this number (62^10: leaves the first base62 digit small).
const ID_OFFSET_RANGE: u64 = 839_299_365_868_340_224;
/// Strides lie in [this, 2 × this): ids look scattered but sort by index.
const ID_STRIDE_MIN: u64 = 1 << 20;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// splitmix64's finalizer: a fast, well-mixing bijection of u64.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Writes `"YYYY-MM-DDTHH:MM:SS.000Z"` or `null`.
pub(crate) fn write_date(out: &mut Vec<u8>, secs: Option<i64>) {
    let Some(secs) = secs else {
        out.extend_from_slice(b"null");
        return;
    };
    let days = secs.div_euclid(DAY);
    let rem = secs.rem_euclid(DAY);
    let (y, m, d) = civil_from_days(days);
    let mut buf = *b"\"0000-00-00T00:00:00.000Z\"";
    let y = y.clamp(0, 9999) as u32;
    put2(&mut buf[1..3], y / 100);
    put2(&mut buf[3..5], y % 100);
    put2(&mut buf[6..8], m);
    put2(&mut buf[9..11], d);
    put2(&mut buf[12..14], (rem / 3600) as u32);
    put2(&mut buf[15..17], (rem % 3600 / 60) as u32);
    put2(&mut buf[18..20], (rem % 60) as u32);
    out.extend_from_slice(&buf);
}

fn put2(slot: &mut [u8], v: u32) {
    slot[0] = b'0' + (v / 10 % 10) as u8;
    slot[1] = b'0' + (v % 10) as u8;
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::okta::User;

    #[test]
    fn ids_are_a_bijection() {
        let pop = Population::new(42, 10_000, 0);
        let mut seen = std::collections::HashSet::new();
        for i in (0..10_000).chain([9_999]) {
            let id = pop.id(i);
            let id = std::str::from_utf8(&id).unwrap().to_owned();
            assert_eq!(pop.index_of(&id), Some(i));
            seen.insert(id);
        }
        assert_eq!(seen.len(), 10_000);
        // Ids sort like their indexes (keyset pagination), including across base62 digits.
        let ids: Vec<[u8; 20]> = (0..10_000).map(|i| pop.id(i)).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids ascend");
        let last = String::from_utf8(pop.id(9_999).to_vec()).unwrap();
        let mut bumped = last.into_bytes();
        bumped[19] = if bumped[19] == b'z' { b'y' } else { b'z' };
        assert_eq!(pop.index_of(std::str::from_utf8(&bumped).unwrap()), None);
        assert_eq!(pop.index_of("00uXXXXXXXXXXXXXXXXX"), None);
        let other = Population::new(43, 10_000, 0);
        let id = String::from_utf8(pop.id(5).to_vec()).unwrap();
        assert_eq!(other.index_of(&id), None, "ids carry the seed");
    }

    #[test]
    fn dates_match_chrono() {
        for secs in [0, 951_782_400, 1_735_689_599, 1_709_164_800, 4_102_444_800] {
            let mut out = Vec::new();
            write_date(&mut out, Some(secs));
            let text = String::from_utf8(out).unwrap();
            let expected = chrono::DateTime::from_timestamp(secs, 0)
                .unwrap()
                .format("\"%Y-%m-%dT%H:%M:%S.000Z\"")
                .to_string();
            assert_eq!(text, expected);
        }
    }

    #[test]
    fn generated_json_parses_as_users_and_agrees_with_the_model() {
        let pop = Population::new(7, 3_000, 2);
        let mut out = b"[".to_vec();
        for i in 0..pop.total() {
            if i > 0 {
                out.push(b',');
            }
            pop.write_json(&mut out, &pop.user(i), "http://127.0.0.1:1");
        }
        out.push(b']');
        let users: Vec<User> = serde_json::from_slice(&out).unwrap();
        assert_eq!(users.len() as u64, pop.total());
        let mut null_logins = 0;
        for (i, user) in users.iter().enumerate() {
            let sim = pop.user(i as u64);
            assert_eq!(user.status.as_str(), STATUS_NAMES[sim.status as usize]);
            assert_eq!(pop.index_of(&user.id), Some(i as u64));
            assert_eq!(user.profile.login, user.profile.email);
            assert_eq!(
                user.profile.login.as_deref(),
                Some(pop.login(&sim).as_str())
            );
            assert!(user.created <= user.last_updated);
            null_logins += usize::from(user.last_login.is_none());
        }
        assert!(null_logins > 0 && null_logins < users.len());
        for (name, _) in FIRST_NAMES.iter().chain(LAST_NAMES.iter()) {
            assert!(!name.contains(['"', '\\']) && !name.chars().any(char::is_control));
        }
    }

    #[test]
    fn status_mix_is_realistic_and_epochs_change_a_few() {
        let pop = Population::new(1, 100_000, 0);
        let mut counts = [0u64; 8];
        for i in 0..pop.total() {
            counts[pop.status(i) as usize] += 1;
        }
        let share = |s: u8| counts[s as usize] as f64 / pop.total() as f64;
        assert!((0.78..0.82).contains(&share(ACTIVE)));
        assert!((0.05..0.07).contains(&share(DEPROVISIONED)));
        for s in 0..8u8 {
            assert!(
                share(s) >= 0.005,
                "{} {}",
                STATUS_NAMES[s as usize],
                share(s)
            );
        }
        let later = Population::new(1, 100_000, 1);
        assert_eq!(later.total(), 100_200);
        let changed = (0..pop.total())
            .filter(|&i| pop.status(i) != later.status(i))
            .count();
        assert!((200..2_000).contains(&changed), "{changed}");
    }
}
