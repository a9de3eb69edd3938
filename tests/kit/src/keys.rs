//! Fake keys, made at run time so that no key-shaped text sits in the source: scanning this
//! repository finds nothing outside the rules' own examples.

pub const ALNUM: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
pub const LOWER_ALNUM: &str = "abcdefghijklmnopqrstuvwxyz0123456789";
pub const HEX: &str = "0123456789abcdef";
pub const DIGITS: &str = "0123456789";
pub const URL_SAFE: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
pub const BASE64: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
pub const BASE32_UPPER: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
/// GitHub's checksum alphabet: digits, then upper case, then lower case.
pub const BASE62: &str = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The pseudo-random stream behind every fake key (xorshift64*): the same seed gives the same
/// keys on every run and every machine, with the entropy of real ones.
#[derive(Clone, Debug)]
pub struct Generator {
    state: u64,
}

impl Generator {
    pub fn new(seed: u64) -> Generator {
        Generator {
            state: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
        }
    }

    /// The next 31 random bits.
    pub fn next_bits(&mut self) -> u64 {
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        self.state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_bits() % n as u64) as usize
    }

    /// `len` characters of `alphabet`.
    pub fn string(&mut self, alphabet: &str, len: usize) -> String {
        let chars: Vec<char> = alphabet.chars().collect();
        (0..len).map(|_| chars[self.below(chars.len())]).collect()
    }
}

/// `len` characters of `alphabet`, pseudo-random but the same for the same seed.
pub fn random(alphabet: &str, len: usize, seed: u64) -> String {
    Generator::new(seed).string(alphabet, len)
}

/// A fake key: `prefix` followed by random characters.
pub fn key(prefix: &str, alphabet: &str, len: usize, seed: u64) -> String {
    [prefix, &random(alphabet, len, seed)].concat()
}

/// The fingerprint detector gives `secret` under `org_key`.
pub fn fingerprint(org_key: &[u8], secret: &str) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, org_key);
    let tag = ring::hmac::sign(&key, secret.as_bytes());
    format!("hmac-sha256:{}", hex::encode(tag.as_ref()))
}

/// Keys of providers that every scanner compared in the benchmarks knows (ours, gitleaks and
/// Kingfisher), one kind after the other, each with the variable it is usually assigned to.
pub struct KnownKeys {
    generator: Generator,
    made: usize,
}

impl KnownKeys {
    pub fn new(seed: u64) -> KnownKeys {
        KnownKeys {
            generator: Generator::new(seed),
            made: 0,
        }
    }

    /// The next key and its variable.
    pub fn next_key(&mut self) -> (&'static str, String) {
        let g = &mut self.generator;
        let kind = self.made % 5;
        self.made += 1;
        match kind {
            0 => (
                "GITHUB_TOKEN",
                [["gh", "p_"].concat(), g.string(ALNUM, 36)].concat(),
            ),
            1 => (
                "GITLAB_TOKEN",
                [["gl", "pat-"].concat(), g.string(ALNUM, 20)].concat(),
            ),
            2 => (
                "SLACK_BOT_TOKEN",
                [
                    ["xo", "xb-"].concat(),
                    g.string(DIGITS, 12),
                    "-".into(),
                    g.string(DIGITS, 13),
                    "-".into(),
                    g.string(ALNUM, 24),
                ]
                .concat(),
            ),
            3 => (
                "STRIPE_SECRET_KEY",
                [["sk_", "live_"].concat(), g.string(ALNUM, 32)].concat(),
            ),
            _ => (
                "NPM_TOKEN",
                [["np", "m_"].concat(), g.string(ALNUM, 36)].concat(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The keys every existing test was written against: the generator must not drift.
    #[test]
    fn the_stream_is_the_one_the_tests_were_written_against() {
        let mut g = Generator::new(7);
        let mut state = 7u64.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        for _ in 0..1000 {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            assert_eq!(
                g.next_bits(),
                state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33
            );
        }
        assert_eq!(random(HEX, 8, 1), random(HEX, 8, 1));
        assert_ne!(random(HEX, 8, 1), random(HEX, 8, 2));
        assert!(key("x_", DIGITS, 5, 3).starts_with("x_"));
    }

    #[test]
    fn known_keys_take_turns_and_are_made_whole() {
        let mut keys = KnownKeys::new(1);
        let made: Vec<(&str, String)> = (0..10).map(|_| keys.next_key()).collect();
        assert_eq!(made[0].0, made[5].0);
        assert_ne!(made[0].1, made[5].1);
        assert!(made.iter().all(|(_, k)| k.len() >= 24));
    }
}
