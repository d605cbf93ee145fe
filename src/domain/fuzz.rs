//! Inputs for property tests of the parsers (form bodies, JSON bodies, token strings,
//! dates): many random byte strings from a fixed seed, weighted towards the characters
//! each format gives meaning to, so the tests reach the parsers' edge cases and run the
//! same way every time.

/// A small, fixed-seed generator (xorshift64*): test inputs, never secrets.
pub struct Inputs {
    state: u64,
}

/// Characters the parsers treat specially, drawn often.
const SPECIAL: &[&str] = &[
    "%",
    "%2",
    "%zz",
    "%ff",
    "%C3%A9",
    "=",
    "&",
    "+",
    "[]",
    "[",
    "]",
    "{",
    "}",
    "\"",
    ":",
    ",",
    "-",
    "T",
    "Z",
    "+02:00",
    "-23:59",
    "9999",
    "0",
    "00",
    "12",
    "31",
    "\\",
    "\u{0}",
    "é",
    "\u{202e}",
    "tpu_",
    "tpa_",
    "null",
    "true",
    "[1]",
    "{\"data\":",
    " ",
];

impl Inputs {
    pub fn new(seed: u64) -> Inputs {
        Inputs { state: seed | 1 }
    }

    fn next(&mut self) -> u64 {
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        self.state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// One input of up to `max` pieces: random bytes, ASCII letters and special
    /// sequences mixed.
    pub fn bytes(&mut self, max: usize) -> Vec<u8> {
        let pieces = (self.next() % (max as u64 + 1)) as usize;
        let mut out = Vec::new();
        for _ in 0..pieces {
            match self.next() % 4 {
                0 => out.push(self.next() as u8),
                1 => out.push(b'a' + (self.next() % 26) as u8),
                _ => {
                    let piece = SPECIAL[(self.next() % SPECIAL.len() as u64) as usize];
                    out.extend_from_slice(piece.as_bytes());
                }
            }
        }
        out
    }

    /// A number below `bound`.
    pub fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound.max(1)
    }

    /// Text shaped like an RFC 3339 time, with every field drawn from beyond its range
    /// as often as from within it.
    pub fn time_text(&mut self) -> String {
        let offset = match self.below(3) {
            0 => "Z".to_owned(),
            _ => format!(
                "{}{:02}:{:02}",
                if self.below(2) == 0 { '+' } else { '-' },
                self.below(30),
                self.below(70)
            ),
        };
        format!(
            "{}-{:02}-{:02}T{:02}:{:02}:{:02}{offset}",
            self.below(10_000),
            self.below(14),
            self.below(33),
            self.below(26),
            self.below(62),
            self.below(62)
        )
    }

    /// The same, as text (invalid UTF-8 replaced).
    pub fn text(&mut self, max: usize) -> String {
        String::from_utf8_lossy(&self.bytes(max)).into_owned()
    }
}
