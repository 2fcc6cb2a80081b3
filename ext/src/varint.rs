//! LEB128 varints: the integer encoding of wavesync's blobs (clocks, vectors, observed sets).

#[inline]
pub fn put(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads one varint at `*pos`; `what` names the blob in the error.
#[inline]
pub fn get(buf: &[u8], pos: &mut usize, what: &str) -> Result<u64, String> {
    // Most fields of a clock are one byte (deltas, small versions).
    match buf.get(*pos) {
        Some(&b) if b < 0x80 => {
            *pos += 1;
            Ok(b as u64)
        }
        _ => get_long(buf, pos, what),
    }
}

fn get_long(buf: &[u8], pos: &mut usize, what: &str) -> Result<u64, String> {
    let mut v: u64 = 0;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*pos).ok_or_else(|| format!("{what} is truncated"))?;
        *pos += 1;
        v |= ((b & 0x7f) as u64) << shift;
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(format!("{what} has an over-long varint"))
}
