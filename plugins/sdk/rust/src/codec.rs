//! The encodings of ABI section 4: the call input, records, pages and
//! directory entries. Every length is checked against the bytes it reads
//! from; a malformed encoding is `Status::ERR_INVALID`.

use crate::{Cursor, DirEntry, Entry, FileType, Op, Status, Update};

pub const RECORD_HEADER_SIZE: usize = 20;
pub const MAX_VERSION_LEN: usize = 16;

/// A little-endian reader over a byte slice that fails rather than panics.
struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn new(b: &'a [u8], at: usize) -> Self {
        Reader { b, at }
    }

    fn bytes(&mut self, n: usize) -> Result<&'a [u8], Status> {
        let end = self.at.checked_add(n).ok_or(Status::ERR_INVALID)?;
        let s = self.b.get(self.at..end).ok_or(Status::ERR_INVALID)?;
        self.at = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, Status> {
        Ok(self.bytes(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, Status> {
        let b = self.bytes(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, Status> {
        let mut a = [0; 4];
        a.copy_from_slice(self.bytes(4)?);
        Ok(u32::from_le_bytes(a))
    }

    fn u64(&mut self) -> Result<u64, Status> {
        let mut a = [0; 8];
        a.copy_from_slice(self.bytes(8)?);
        Ok(u64::from_le_bytes(a))
    }

    fn string(&mut self, n: usize) -> Result<String, Status> {
        String::from_utf8(self.bytes(n)?.to_vec()).map_err(|_| Status::ERR_INVALID)
    }
}

/// The call input: whether it is a render, the watch's name, the cursor
/// and the updates.
pub fn decode_input(b: &[u8]) -> Result<(bool, String, Cursor, Vec<Update>), Status> {
    let mut r = Reader::new(b, 0);
    let kind = r.u8()?;
    let vlen = r.u8()? as usize;
    r.u16()?;
    let wlen = r.u32()? as usize;
    let n = r.u32()? as usize;
    let revision = r.u64()?;
    if !(kind == 1 || kind == 2) || vlen > MAX_VERSION_LEN {
        return Err(Status::ERR_INVALID);
    }
    let cursor = Cursor {
        revision,
        version: r.bytes(vlen)?.to_vec(),
    };
    let watch = r.string(wlen)?;
    // Each record takes at least its header: a count the input cannot
    // hold is refused before it reserves memory.
    if n > (b.len() - r.at) / RECORD_HEADER_SIZE {
        return Err(Status::ERR_INVALID);
    }
    let mut updates = Vec::with_capacity(n);
    for _ in 0..n {
        updates.push(record(&mut r)?);
    }
    Ok((kind == 2, watch, cursor, updates))
}

/// One record (ABI section 4) at r.
fn record(r: &mut Reader) -> Result<Update, Status> {
    let op = match r.u8()? {
        1 => Op::Put,
        2 => Op::Delete,
        3 => Op::Purge,
        _ => return Err(Status::ERR_INVALID),
    };
    let vlen = r.u8()? as usize;
    r.u16()?;
    let klen = r.u32()? as usize;
    let llen = r.u32()? as usize;
    let revision = r.u64()?;
    if vlen > MAX_VERSION_LEN {
        return Err(Status::ERR_INVALID);
    }
    let version = r.bytes(vlen)?.to_vec();
    let key = r.string(klen)?;
    let value = r.bytes(llen)?.to_vec();
    Ok(Update {
        op,
        key,
        value,
        revision,
        version,
    })
}

/// A record returned by view_get.
pub fn decode_entry(b: &[u8]) -> Result<Entry, Status> {
    record(&mut Reader::new(b, 0)).map(Update::into_entry)
}

/// A page's header: the count of its items and whether more follow.
fn page_header(r: &mut Reader) -> Result<(usize, bool), Status> {
    let count = r.u32()? as usize;
    let flags = r.u32()?;
    Ok((count, flags & 1 != 0))
}

/// A page of view entries, appended to out; whether more follow.
pub fn decode_entries(b: &[u8], out: &mut Vec<Entry>) -> Result<bool, Status> {
    let mut r = Reader::new(b, 0);
    let (count, more) = page_header(&mut r)?;
    for _ in 0..count {
        out.push(record(&mut r)?.into_entry());
    }
    Ok(more)
}

/// A page of directory entries, appended to out; whether more follow.
pub fn decode_dir_entries(b: &[u8], out: &mut Vec<DirEntry>) -> Result<bool, Status> {
    let mut r = Reader::new(b, 0);
    let (count, more) = page_header(&mut r)?;
    for _ in 0..count {
        let kind = match r.u8()? {
            1 => FileType::File,
            2 => FileType::Dir,
            3 => FileType::Symlink,
            _ => FileType::Other,
        };
        r.u8()?;
        let n = r.u16()? as usize;
        let name = r.bytes(n)?.to_vec();
        out.push(DirEntry { kind, name });
    }
    Ok(more)
}
