//! The `/`-form text of a name is an identity (bans, grid-mapfile, pool
//! account, replay owner, audit `who`): two names that are not equal (§5)
//! must never render alike. A property test over generated names, drawn
//! from a small alphabet of the characters that could make text ambiguous,
//! so that near-collisions are common.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation // small test values: lengths < 128, Latin-1 characters
)]

use std::collections::HashMap;

use jobseal_core::name;

/// splitmix64: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn tlv(tag: u8, value: &[u8]) -> Vec<u8> {
    assert!(value.len() < 128);
    let mut out = vec![tag, value.len() as u8];
    out.extend_from_slice(value);
    out
}

/// Attribute types: CN, O, DC, one without a short name, and that one with
/// an arc padded (not DER: it would print alike).
const TYPES: [&[u8]; 5] = [
    &[0x55, 0x04, 0x03],
    &[0x55, 0x04, 0x0a],
    &[0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x19],
    &[0x2b, 0x06, 0x01, 0x04, 0x01, 0x09],
    &[0x2b, 0x06, 0x01, 0x04, 0x01, 0x80, 0x09],
];

/// Characters that separate, escape or mark values, and a few others.
const ALPHABET: [char; 12] = ['a', 'A', '/', '+', '\\', '#', '=', ' ', '\n', 'x', '0', 'é'];

fn string_value(rng: &mut Rng) -> Vec<u8> {
    let len = rng.below(5);
    let text: String = (0..len)
        .map(|_| ALPHABET[rng.below(ALPHABET.len())])
        .collect();
    match rng.below(4) {
        // UTF8String
        0 => tlv(0x0c, text.as_bytes()),
        // BMPString
        1 => {
            let units: Vec<u8> = text.encode_utf16().flat_map(u16::to_be_bytes).collect();
            tlv(0x1e, &units)
        }
        // T61String (Latin-1 bytes)
        2 => {
            let bytes: Vec<u8> = text.chars().map(|c| u32::from(c) as u8).collect();
            tlv(0x14, &bytes)
        }
        // PrintableString of the ASCII characters (not strictly printable:
        // the renderer must not rely on it)
        _ => {
            let ascii: Vec<u8> = text.bytes().filter(u8::is_ascii).collect();
            tlv(0x13, &ascii)
        }
    }
}

fn other_value(rng: &mut Rng) -> Vec<u8> {
    let len = rng.below(3);
    let bytes: Vec<u8> = (0..len)
        .map(|_| b"\x00\x2f\x61\x23"[rng.below(4)])
        .collect();
    match rng.below(3) {
        0 => tlv(0x04, &bytes),
        1 => {
            let mut bits = vec![0u8];
            bits.extend_from_slice(&bytes);
            tlv(0x03, &bits)
        }
        _ => tlv(0x02, &[rng.below(3) as u8]),
    }
}

fn generate_name(rng: &mut Rng) -> Vec<u8> {
    let mut rdns = Vec::new();
    for _ in 0..1 + rng.below(3) {
        let mut set = Vec::new();
        for _ in 0..1 + usize::from(rng.below(4) == 0) {
            let oid = tlv(0x06, TYPES[rng.below(TYPES.len())]);
            let value = if rng.below(6) == 0 {
                other_value(rng)
            } else {
                string_value(rng)
            };
            set.extend(tlv(0x30, &[oid, value].concat()));
        }
        rdns.extend(tlv(0x31, &set));
    }
    tlv(0x30, &rdns)
}

#[test]
fn names_that_render_alike_are_equal_names() {
    let mut rng = Rng(0x6a6f_6273_6561_6c21);
    let mut seen: HashMap<String, (Vec<u8>, Vec<u8>)> = HashMap::new();
    let mut collisions = 0;
    for _ in 0..200_000 {
        let der = generate_name(&mut rng);
        let Some(canon) = name::canonical(&der) else {
            continue; // unreadable names are refused before rendering
        };
        let text = name::to_slash_string(&der);
        match seen.get(&text) {
            Some((other, other_canon)) => {
                collisions += 1;
                assert_eq!(
                    &canon, other_canon,
                    "{text:?} renders two different names: {der:02x?} and {other:02x?}"
                );
            }
            None => {
                seen.insert(text, (der, canon));
            }
        }
    }
    // Equal names (another string type, the same text) do render alike:
    // the test saw such pairs, so it compared something.
    assert!(collisions > 1000, "only {collisions} equal renderings");
}

#[test]
fn separators_and_markers_are_escaped() {
    let cn = |value: Vec<u8>| {
        let atv = tlv(0x30, &[tlv(0x06, &[0x55, 0x04, 0x03]), value].concat());
        tlv(0x30, &tlv(0x31, &atv))
    };
    assert_eq!(
        name::to_slash_string(&cn(tlv(0x0c, b"host/x+y\\z"))),
        "/CN=host\\/x\\+y\\\\z"
    );
    assert_eq!(name::to_slash_string(&cn(tlv(0x0c, b"#1=2"))), "/CN=\\#1=2");
    // A value that is not a string: `#` and the hex of its DER.
    assert_eq!(
        name::to_slash_string(&cn(tlv(0x03, &[0x00, 0xff]))),
        "/CN=#030200ff"
    );
}
