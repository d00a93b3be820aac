//! The `.lcpkg` container: named entries with checksums, in one deterministic file.
//!
//! Layout: magic `LCPKG\0\r\n`, format version (u32 little-endian), entry count, then per entry
//! its name, length and blake3 checksum followed by its bytes, and last the blake3 of everything
//! before it. Entries are sorted by name; nothing depends on time or the file system, so the same
//! contents always give the same bytes.

use lightchain_aivm::wire::R;

use crate::error::{PackageError, Result};

const MAGIC: &[u8; 8] = b"LCPKG\0\r\n";
/// The container format this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
const MAX_ENTRIES: usize = 64;

fn corrupt(msg: impl Into<String>) -> PackageError {
    PackageError::Corrupt(msg.into())
}

/// Writes entries (sorted by name) into a container.
pub fn write(entries: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut sorted: Vec<&(String, Vec<u8>)> = entries.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = Vec::new();
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&(sorted.len() as u32).to_le_bytes());
    for (name, data) in sorted {
        out.extend_from_slice(&(name.len() as u16).to_le_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(&(data.len() as u64).to_le_bytes());
        out.extend_from_slice(blake3::hash(data).as_bytes());
        out.extend_from_slice(data);
    }
    let sum = blake3::hash(&out);
    out.extend_from_slice(sum.as_bytes());
    out
}

/// Reads `N` bytes of `what` (a truncated file names the field it ends in).
fn take<const N: usize>(c: &mut R, what: &str) -> Result<[u8; N]> {
    c.array::<N>()
        .map_err(|_| corrupt(format!("truncated in {what}")))
}

/// Reads `n` bytes of `what`.
fn bytes<'a>(c: &mut R<'a>, n: usize, what: &str) -> Result<&'a [u8]> {
    c.take(n)
        .map_err(|_| corrupt(format!("truncated in {what}")))
}

/// Reads a container: checks the magic, the version, every entry's checksum and the whole
/// file's checksum. Returns the entries in file order.
pub fn read(b: &[u8]) -> Result<Vec<(String, Vec<u8>)>> {
    if b.len() < MAGIC.len() || &b[..MAGIC.len()] != MAGIC {
        return Err(corrupt("not a lightchain package (bad magic)"));
    }
    let mut c = R {
        b,
        pos: MAGIC.len(),
    };
    let version = u32::from_le_bytes(take(&mut c, "the header")?);
    if version > FORMAT_VERSION {
        return Err(corrupt(format!(
            "package format version {version} is newer than this lightchain reads ({FORMAT_VERSION}); upgrade lightchain"
        )));
    }
    if version == 0 {
        return Err(corrupt("package format version 0 is not valid"));
    }
    if b.len() < MAGIC.len() + 8 + 32 {
        return Err(corrupt("truncated"));
    }
    let body = &b[..b.len() - 32];
    if blake3::hash(body).as_bytes() != &b[b.len() - 32..] {
        return Err(corrupt(
            "file checksum mismatch: the file is damaged or was modified",
        ));
    }
    let mut c = R {
        b: body,
        pos: c.pos,
    };
    let n = u32::from_le_bytes(take(&mut c, "the header")?) as usize;
    if n > MAX_ENTRIES {
        return Err(corrupt(format!("{n} entries, more than {MAX_ENTRIES}")));
    }
    let mut out: Vec<(String, Vec<u8>)> = Vec::with_capacity(n);
    for _ in 0..n {
        let len = u16::from_le_bytes(take(&mut c, "an entry name")?) as usize;
        let name = String::from_utf8(bytes(&mut c, len, "an entry name")?.to_vec())
            .map_err(|_| corrupt("an entry name is not UTF-8"))?;
        let size = u64::from_le_bytes(take(&mut c, "an entry size")?);
        let sum: [u8; 32] = take(&mut c, "an entry checksum")?;
        let size = usize::try_from(size).map_err(|_| corrupt("entry too large"))?;
        let data = bytes(&mut c, size, &format!("entry \"{name}\""))?;
        if blake3::hash(data).as_bytes() != &sum {
            return Err(corrupt(format!("checksum mismatch in entry \"{name}\"")));
        }
        if out.last().is_some_and(|(prev, _)| *prev >= name) {
            return Err(corrupt("entries are not in canonical order"));
        }
        out.push((name, data.to_vec()));
    }
    if c.pos != body.len() {
        return Err(corrupt("trailing bytes after the last entry"));
    }
    Ok(out)
}
