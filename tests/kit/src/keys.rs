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

/// A provider whose keys `detector scan --verify` checks: the rule that finds its keys, the
/// variable a key is usually assigned to, and the host of its documented check endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VerifiableProvider {
    pub rule: &'static str,
    pub variable: &'static str,
    pub host: &'static str,
}

/// The providers [`VerifiableKeys`] cycles over, in its order.
pub const VERIFIABLE_PROVIDERS: &[VerifiableProvider] = &[
    provider("github-pat-classic", "GITHUB_TOKEN", "api.github.com"),
    provider("gitlab-pat", "GITLAB_TOKEN", "gitlab.com"),
    provider("slack-bot-token", "SLACK_BOT_TOKEN", "slack.com"),
    provider(
        "stripe-secret-key-live",
        "STRIPE_SECRET_KEY",
        "api.stripe.com",
    ),
    provider("openai-project-key", "OPENAI_API_KEY", "api.openai.com"),
    provider(
        "anthropic-api-key",
        "ANTHROPIC_API_KEY",
        "api.anthropic.com",
    ),
    provider("npm-access-token", "NPM_TOKEN", "registry.npmjs.org"),
    provider("huggingface-token", "HF_TOKEN", "huggingface.co"),
    provider("sendgrid-api-key", "SENDGRID_API_KEY", "api.sendgrid.com"),
    provider("groq-api-key", "GROQ_API_KEY", "api.groq.com"),
    provider(
        "digitalocean-token",
        "DIGITALOCEAN_TOKEN",
        "api.digitalocean.com",
    ),
    provider("linear-api-key", "LINEAR_API_KEY", "api.linear.app"),
    provider("notion-integration-token", "NOTION_TOKEN", "api.notion.com"),
    provider("xai-api-key", "XAI_API_KEY", "api.x.ai"),
    provider("openrouter-api-key", "OPENROUTER_API_KEY", "openrouter.ai"),
    provider("postman-api-key", "POSTMAN_API_KEY", "api.getpostman.com"),
    provider("tavily-api-key", "TAVILY_API_KEY", "api.tavily.com"),
    provider("doppler-token", "DOPPLER_TOKEN", "api.doppler.com"),
    provider("sentry-user-token", "SENTRY_AUTH_TOKEN", "sentry.io"),
    provider(
        "replicate-api-token",
        "REPLICATE_API_TOKEN",
        "api.replicate.com",
    ),
];

const fn provider(
    rule: &'static str,
    variable: &'static str,
    host: &'static str,
) -> VerifiableProvider {
    VerifiableProvider {
        rule,
        variable,
        host,
    }
}

/// One key of [`VerifiableKeys`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiableKey {
    pub provider: VerifiableProvider,
    pub key: String,
}

/// Keys of the providers `--verify` checks ([`VERIFIABLE_PROVIDERS`]), one provider after the
/// other, each in the shape of its rule with a random body (seeded: the same keys on every
/// run). A body that the scanner would drop as documentation filler (a run such as `abcdefghi`,
/// `xxxx`, `example`…) is drawn again, so every key made is one the scanner reports.
pub struct VerifiableKeys {
    generator: Generator,
    made: usize,
}

impl VerifiableKeys {
    pub fn new(seed: u64) -> VerifiableKeys {
        VerifiableKeys {
            generator: Generator::new(seed),
            made: 0,
        }
    }

    /// The next key: `(variable, key, provider host)`.
    pub fn next_key(&mut self) -> (&'static str, String, &'static str) {
        let made = self.next_verifiable();
        (made.provider.variable, made.key, made.provider.host)
    }

    /// The next key with its provider (and so its rule id).
    pub fn next_verifiable(&mut self) -> VerifiableKey {
        let index = self.made % VERIFIABLE_PROVIDERS.len();
        self.made += 1;
        loop {
            let key = verifiable_key(index, &mut self.generator);
            if !looks_like_filler(&key) {
                return VerifiableKey {
                    provider: VERIFIABLE_PROVIDERS[index],
                    key,
                };
            }
        }
    }
}

/// The key of `VERIFIABLE_PROVIDERS[index]`, drawn from `g`. Prefixes are split so that no
/// key-shaped text sits in this file.
fn verifiable_key(index: usize, g: &mut Generator) -> String {
    let mut parts: Vec<String> = Vec::with_capacity(6);
    match index {
        0 => parts.extend([["gh", "p_"].concat(), g.string(ALNUM, 36)]),
        1 => parts.extend([["gl", "pat-"].concat(), g.string(ALNUM, 20)]),
        2 => parts.extend([
            ["xo", "xb-"].concat(),
            g.string("123456789", 1),
            g.string(DIGITS, 11),
            "-".into(),
            g.string("123456789", 1),
            g.string(DIGITS, 12),
            "-".into(),
            g.string(ALNUM, 24),
        ]),
        3 => parts.extend([["sk_", "live_"].concat(), g.string(ALNUM, 99)]),
        4 => parts.extend([
            ["sk-", "proj-"].concat(),
            g.string(URL_SAFE, 74),
            ["T3Blbk", "FJ"].concat(),
            g.string(URL_SAFE, 74),
        ]),
        5 => parts.extend([
            ["sk-", "ant-api03-"].concat(),
            g.string(URL_SAFE, 93),
            "AA".into(),
        ]),
        6 => parts.extend([["np", "m_"].concat(), g.string(ALNUM, 36)]),
        7 => parts.extend([["h", "f_"].concat(), g.string(ALNUM, 34)]),
        8 => parts.extend([
            ["S", "G."].concat(),
            g.string(URL_SAFE, 22),
            ".".into(),
            g.string(URL_SAFE, 43),
        ]),
        9 => parts.extend([["gs", "k_"].concat(), g.string(ALNUM, 52)]),
        10 => parts.extend([["do", "p_v1_"].concat(), g.string(HEX, 64)]),
        11 => parts.extend([["lin_", "api_"].concat(), g.string(ALNUM, 40)]),
        12 => parts.extend([["nt", "n_"].concat(), g.string(ALNUM, 46)]),
        13 => parts.extend([["xa", "i-"].concat(), g.string(ALNUM, 80)]),
        14 => parts.extend([["sk-", "or-v1-"].concat(), g.string(HEX, 64)]),
        15 => parts.extend([
            ["PM", "AK-"].concat(),
            g.string(HEX, 24),
            "-".into(),
            g.string(HEX, 34),
        ]),
        16 => parts.extend([["tvly-", "dev-"].concat(), g.string(ALNUM, 32)]),
        17 => parts.extend([["dp.", "pt."].concat(), g.string(ALNUM, 43)]),
        18 => parts.extend([["sntr", "yu_"].concat(), g.string(HEX, 64)]),
        19 => parts.extend([["r8", "_"].concat(), g.string(ALNUM, 37)]),
        _ => unreachable!("{index} is not a verifiable provider"),
    }
    parts.concat()
}

/// What the scanner would take for documentation filler rather than a key, with margin: a
/// marker word, four of one character in a row, or an ascending run of six.
fn looks_like_filler(key: &str) -> bool {
    let lower = key.to_ascii_lowercase();
    if [
        "example",
        "xxxx",
        "dummy",
        "redacted",
        "placeholder",
        "changeme",
        "your",
    ]
    .iter()
    .any(|m| lower.contains(m))
    {
        return true;
    }
    let alnum: Vec<u8> = lower.bytes().filter(u8::is_ascii_alphanumeric).collect();
    let (mut same, mut ascending) = (1, 1);
    for pair in alnum.windows(2) {
        same = if pair[1] == pair[0] { same + 1 } else { 1 };
        ascending = if pair[1] == pair[0] + 1 {
            ascending + 1
        } else {
            1
        };
        if same >= 4 || ascending >= 6 {
            return true;
        }
    }
    false
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

    /// Every rule of `rules/*.toml`, by id: (regex, keywords, min_entropy).
    fn rules() -> std::collections::HashMap<String, (String, Vec<String>, Option<f64>)> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../rules");
        let mut rules = std::collections::HashMap::new();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "toml") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let doc: toml::Value = toml::from_str(&text).unwrap();
            for rule in doc
                .get("rules")
                .and_then(|r| r.as_array())
                .into_iter()
                .flatten()
            {
                let id = rule["id"].as_str().unwrap().to_string();
                let regex = rule["regex"].as_str().unwrap().to_string();
                let keywords = rule
                    .get("keywords")
                    .and_then(|k| k.as_array())
                    .map(|k| k.iter().map(|w| w.as_str().unwrap().to_string()).collect())
                    .unwrap_or_default();
                let entropy = rule.get("min_entropy").and_then(|e| e.as_float());
                rules.insert(id, (regex, keywords, entropy));
            }
        }
        rules
    }

    fn shannon(text: &str) -> f64 {
        let mut counts = [0usize; 256];
        for b in text.bytes() {
            counts[b as usize] += 1;
        }
        let n = text.len() as f64;
        counts
            .iter()
            .filter(|&&c| c > 0)
            .map(|&c| {
                let p = c as f64 / n;
                -p * p.log2()
            })
            .sum()
    }

    #[test]
    fn verifiable_keys_match_their_rules() {
        let rules = rules();
        let mut keys = VerifiableKeys::new(11);
        for _ in 0..VERIFIABLE_PROVIDERS.len() * 10 {
            let made = keys.next_verifiable();
            let (regex, keywords, entropy) = rules
                .get(made.provider.rule)
                .unwrap_or_else(|| panic!("no rule {}", made.provider.rule));
            let re = regex::bytes::RegexBuilder::new(regex)
                .unicode(false)
                .build()
                .unwrap();
            // As the benchmark and the tests write it: one assignment on a line.
            let line = format!("{}={}\n", made.provider.variable, made.key);
            let caps = re
                .captures(line.as_bytes())
                .unwrap_or_else(|| panic!("{} does not match {}", made.provider.rule, regex));
            let secret = caps
                .name("secret")
                .or_else(|| caps.get(1))
                .map(|m| m.as_bytes())
                .unwrap();
            assert_eq!(secret, made.key.as_bytes(), "{}", made.provider.rule);
            let lower = made.key.to_ascii_lowercase();
            assert!(
                keywords.iter().any(|k| lower.contains(k.as_str())),
                "{}: no keyword of {keywords:?}",
                made.provider.rule
            );
            if let Some(min) = entropy {
                assert!(
                    shannon(&made.key) >= *min,
                    "{}: low entropy",
                    made.provider.rule
                );
            }
            assert!(!looks_like_filler(&made.key));
        }
    }

    #[test]
    fn verifiable_keys_cycle_over_twenty_providers_and_are_distinct() {
        let mut keys = VerifiableKeys::new(3);
        let made: Vec<(&str, String, &str)> = (0..1000).map(|_| keys.next_key()).collect();
        let distinct: std::collections::HashSet<&str> =
            made.iter().map(|(_, k, _)| k.as_str()).collect();
        assert_eq!(distinct.len(), 1000);
        let hosts: std::collections::HashSet<&str> = made.iter().map(|(_, _, h)| *h).collect();
        assert_eq!(hosts.len(), 20);
        assert_eq!(VERIFIABLE_PROVIDERS.len(), 20);
        assert_eq!(made[0].2, made[20].2);
        assert_eq!(made[0].0, "GITHUB_TOKEN");
        // Seeded: the same stream again.
        assert_eq!(VerifiableKeys::new(3).next_key(), made[0]);
        assert!(looks_like_filler("abcdef"));
        assert!(looks_like_filler("a-Xxxx"));
        assert!(!looks_like_filler("aZ3kQ9"));
    }
}
