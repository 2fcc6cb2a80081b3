//! Primary-key packing, byte-compatible with cr-sqlite's `crsql_pack_columns`.
//!
//! Layout: one byte with the column count, then per column a type byte
//! `(len_bytes << 3) | type` (1 int, 2 float, 3 text, 4 blob, 5 null) and a payload:
//! ints as their minimal big-endian two's-complement bytes (`len_bytes` of them, 0 for 0),
//! floats as 8 big-endian bytes, text/blob as a `len_bytes`-long big-endian length and the
//! bytes themselves.

use crate::value::Val;

const T_INT: u8 = 1;
const T_FLOAT: u8 = 2;
const T_TEXT: u8 = 3;
const T_BLOB: u8 = 4;
const T_NULL: u8 = 5;

/// Bytes needed to hold `v` as an unsigned big-endian number (0 for 0).
fn unsigned_len(v: u64) -> usize {
    8 - (v.leading_zeros() as usize / 8)
}

pub fn pack_into(out: &mut Vec<u8>, vals: &[Val]) -> Result<(), String> {
    if vals.len() > 255 {
        return Err("cannot pack more than 255 columns".into());
    }
    out.push(vals.len() as u8);
    for v in vals {
        match v {
            Val::Null => out.push(T_NULL),
            Val::Int(i) => {
                let u = *i as u64;
                let n = unsigned_len(u);
                out.push(((n as u8) << 3) | T_INT);
                out.extend_from_slice(&u.to_be_bytes()[8 - n..]);
            }
            Val::Real(f) => {
                out.push(T_FLOAT);
                out.extend_from_slice(&f.to_bits().to_be_bytes());
            }
            Val::Text(b) | Val::Blob(b) => {
                let n = unsigned_len(b.len() as u64);
                let t = if matches!(v, Val::Text(_)) { T_TEXT } else { T_BLOB };
                out.push(((n as u8) << 3) | t);
                out.extend_from_slice(&(b.len() as u64).to_be_bytes()[8 - n..]);
                out.extend_from_slice(b);
            }
        }
    }
    Ok(())
}

pub fn pack(vals: &[Val]) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(1 + vals.len() * 10);
    pack_into(&mut out, vals)?;
    Ok(out)
}

fn take<'a>(buf: &mut &'a [u8], n: usize) -> Result<&'a [u8], String> {
    if buf.len() < n {
        return Err("packed columns are truncated".into());
    }
    let (head, rest) = buf.split_at(n);
    *buf = rest;
    Ok(head)
}

fn be_u64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0u64, |acc, b| (acc << 8) | *b as u64)
}

/// Unpacks a blob made by `pack`; rejects anything `pack` could not have produced (unknown
/// types, truncation, trailing bytes, and lengths that are not minimal): a key has exactly
/// one packed form, so two forms can never name the same row twice in a clock table.
pub fn unpack(blob: &[u8]) -> Result<Vec<Val>, String> {
    let mut buf = blob;
    let count = *take(&mut buf, 1)?.first().unwrap_or(&0) as usize;
    let mut vals = Vec::with_capacity(count);
    for _ in 0..count {
        let tb = take(&mut buf, 1)?[0];
        let (n, t) = ((tb >> 3) as usize, tb & 7);
        let v = match t {
            T_NULL if n == 0 => Val::Null,
            T_INT if n <= 8 => {
                let raw = be_u64(take(&mut buf, n)?);
                if unsigned_len(raw) != n {
                    return Err(format!("packed integer {} is not in its shortest form", raw as i64));
                }
                // Sign-extend only full-width values: pack writes negatives with 8 bytes.
                Val::Int(raw as i64)
            }
            T_FLOAT if n == 0 => {
                let raw = take(&mut buf, 8)?;
                Val::Real(f64::from_bits(be_u64(raw)))
            }
            T_TEXT | T_BLOB if n <= 8 => {
                let len = be_u64(take(&mut buf, n)?);
                if unsigned_len(len) != n {
                    return Err("packed length is not in its shortest form".into());
                }
                if len > buf.len() as u64 {
                    return Err("packed columns are truncated".into());
                }
                let bytes = take(&mut buf, len as usize)?.to_vec();
                if t == T_TEXT {
                    if std::str::from_utf8(&bytes).is_err() {
                        return Err("packed text is not valid UTF-8".into());
                    }
                    Val::Text(bytes)
                } else {
                    Val::Blob(bytes)
                }
            }
            _ => return Err(format!("unknown packed column type byte 0x{tb:02x}")),
        };
        vals.push(v);
    }
    if !buf.is_empty() {
        return Err("packed columns have trailing bytes".into());
    }
    Ok(vals)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02X}")).collect()
    }

    #[test]
    fn known_vectors() {
        assert_eq!(hex(&pack(&[Val::Int(1)]).unwrap()), "010901");
        assert_eq!(hex(&pack(&[Val::Text(b"a".to_vec())]).unwrap()), "010B0161");
        assert_eq!(hex(&pack(&[Val::Int(-1)]).unwrap()), "0141FFFFFFFFFFFFFFFF");
        assert_eq!(hex(&pack(&[Val::Real(1.5)]).unwrap()), "01023FF8000000000000");
        assert_eq!(hex(&pack(&[Val::Int(0), Val::Null]).unwrap()), "020105");
        // From the cr-sqlite 0.16.3 fixtures.
        assert_eq!(hex(&pack(&[Val::Int(65536), Val::Text("ü".as_bytes().to_vec())]).unwrap()), "02190100000B02C3BC");
        assert_eq!(hex(&pack(&[Val::Int(128), Val::Text(b"big".to_vec())]).unwrap()), "0209800B03626967");
    }

    #[test]
    fn roundtrip_and_rejects() {
        let vals = vec![
            Val::Int(i64::MIN),
            Val::Int(i64::MAX),
            Val::Int(0),
            Val::Real(-0.5),
            Val::Text(b"hello".to_vec()),
            Val::Blob(vec![0; 300]),
            Val::Null,
        ];
        let p = pack(&vals).unwrap();
        assert_eq!(unpack(&p).unwrap(), vals);
        for cut in 0..p.len() {
            assert!(unpack(&p[..cut]).is_err(), "truncated at {cut}");
        }
        let mut extra = p.clone();
        extra.push(0);
        assert!(unpack(&extra).is_err());
        assert!(unpack(&[1, 0x07]).is_err());
        // One form per key: longer-than-needed integers and lengths are refused.
        assert!(unpack(&[1, 0x09, 0x00]).is_err());
        assert!(unpack(&[1, 0x11, 0x00, 0x05]).is_err());
        assert!(unpack(&[1, 0x13, 0x00, 0x01, b'a']).is_err());
        assert!(unpack(&[1, 0x03]).is_ok());
    }
}
