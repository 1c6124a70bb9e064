//! Row blocks: how rows are laid out in a generation's sled tree.
//!
//! sled pays a fixed cost per key (page updates, log records, per-entry allocations when
//! reading), which caps it near 100,000 small inserts per second on a small machine and makes
//! a full scan of a million keys take over a second. So rows are stored in *blocks* of up to
//! 32 rows (or 16 KiB), one sled entry per block:
//!
//! ```text
//! key   = a row id <= every row id in the block (the first row's id when the block was made)
//! value = version: u8 (= 2) | row count: LEB128 | rows, sorted by id:
//!         id length: LEB128 | id bytes | row length: LEB128 | row bytes (see `codec`)
//! ```
//!
//! Blocks partition the id space: the block with the greatest key `<=` a row id is the only
//! place that row can be. Every write goes through [`plan`], which merges sorted row changes
//! into the covering blocks (splitting blocks that grow past twice the target size) and yields
//! whole-block writes, applied in one atomic sled batch or transaction. Rows never move
//! between blocks except when a block is split, and a split is one atomic batch; a reader that
//! straddles a split may see a row twice, so scans skip ids not greater than the last id seen.

use std::collections::BTreeMap;
use std::ops::Bound;

use crate::error::{Error, Result};

const VERSION: u8 = 2;
/// Target rows per block.
pub(crate) const BLOCK_ROWS: usize = 32;
/// Target bytes per block.
const BLOCK_BYTES: usize = 16 * 1024;

/// Row changes by row id: `Some(encoded row)` to write, `None` to delete.
pub(crate) type RowWrites = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

/// Block changes by block key: `Some(encoded block)` to write, `None` to remove.
pub(crate) type BlockWrites = Vec<(Vec<u8>, Option<Vec<u8>>)>;

fn push_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn read_varint(bytes: &[u8], pos: &mut usize) -> Result<usize, String> {
    let mut n: u64 = 0;
    let mut shift = 0;
    loop {
        let b = *bytes
            .get(*pos)
            .ok_or_else(|| "truncated block".to_owned())?;
        *pos += 1;
        if shift > 63 {
            return Err("block length overflows".to_owned());
        }
        n |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return usize::try_from(n).map_err(|_| "block length overflows".to_owned());
        }
        shift += 7;
    }
}

/// Encodes rows (sorted by id) as a block.
pub(crate) fn encode<'a>(
    rows: impl IntoIterator<Item = (&'a [u8], &'a [u8])>,
    count: usize,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + count * 280);
    out.push(VERSION);
    push_varint(&mut out, count as u64);
    for (id, row) in rows {
        push_varint(&mut out, id.len() as u64);
        out.extend_from_slice(id);
        push_varint(&mut out, row.len() as u64);
        out.extend_from_slice(row);
    }
    out
}

/// The rows of an encoded block, in id order, borrowed.
#[derive(Debug, Clone)]
pub(crate) struct BlockRows<'a> {
    bytes: &'a [u8],
    pos: usize,
    left: usize,
}

impl<'a> BlockRows<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Result<BlockRows<'a>, String> {
        if bytes.first() != Some(&VERSION) {
            return Err(format!("unknown block format {:?}", bytes.first().copied()));
        }
        let mut pos = 1;
        let left = read_varint(bytes, &mut pos)?;
        Ok(BlockRows { bytes, pos, left })
    }

    /// Number of rows in the block.
    pub(crate) fn len(&self) -> usize {
        self.left
    }

    fn slice(&mut self) -> Result<&'a [u8], String> {
        let len = read_varint(self.bytes, &mut self.pos)?;
        let end = self
            .pos
            .checked_add(len)
            .filter(|&e| e <= self.bytes.len())
            .ok_or_else(|| "truncated block".to_owned())?;
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }
}

impl<'a> Iterator for BlockRows<'a> {
    type Item = Result<(&'a [u8], &'a [u8]), String>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let r = self.slice().and_then(|id| Ok((id, self.slice()?)));
        if r.is_err() {
            self.left = 0;
        }
        Some(r)
    }
}

fn damaged(table: &str, key: &[u8], detail: String) -> Error {
    Error::CorruptRow {
        table: table.to_owned(),
        row_id: format!("block {}", String::from_utf8_lossy(key)),
        detail,
    }
}

/// Decodes a whole block into owned rows.
pub(crate) fn rows_of(table: &str, key: &[u8], bytes: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    BlockRows::new(bytes)
        .and_then(|rows| {
            rows.map(|r| r.map(|(id, row)| (id.to_vec(), row.to_vec())))
                .collect::<Result<Vec<_>, String>>()
        })
        .map_err(|d| damaged(table, key, d))
}

/// The encoded row `id`, if present.
pub(crate) fn find(table: &str, tree: &sled::Tree, id: &[u8]) -> Result<Option<Vec<u8>>> {
    let Some(item) = tree.range(..=id).next_back() else {
        return Ok(None);
    };
    let (key, block) = item?;
    for r in BlockRows::new(&block).map_err(|d| damaged(table, &key, d))? {
        let (rid, row) = r.map_err(|d| damaged(table, &key, d))?;
        if rid == id {
            return Ok(Some(row.to_vec()));
        }
    }
    Ok(None)
}

/// Bytes of block scanned per extra page access (see [`note_scanned`]).
const SCAN_TOUCH_BYTES: usize = 2 * 1024;

/// Tells sled's page cache that a scan read this block, so that a scan's memory stays bounded
/// by the cache capacity instead of growing with the tree.
///
/// sled 0.34 queues page accesses in 256 LRU shards and only accounts (and evicts) once a
/// shard has queued 64 accesses. A scan reaches each leaf page once, so a cold scan evicts
/// nothing: it keeps every page it read resident, whatever `cache_capacity` says (a 250 MB
/// tree scanned cold: 250 MB resident; 500 MB: 470 MB). Reading the block's key again about
/// once per 2 KiB of block makes the accesses count: the same 500 MB scan stays at 64 MB
/// resident and takes no longer (fewer pages to allocate and fault in).
pub(crate) fn note_scanned(tree: &sled::Tree, key: &[u8], block_len: usize) -> Result<()> {
    for _ in 0..block_len.div_ceil(SCAN_TOUCH_BYTES).min(16) {
        tree.get(key)?;
    }
    Ok(())
}

/// Number of rows in the tree (reads only each block's header).
pub(crate) fn count(table: &str, tree: &sled::Tree) -> Result<u64> {
    let mut n = 0u64;
    for item in tree.iter() {
        let (key, block) = item?;
        note_scanned(tree, &key, block.len())?;
        n += BlockRows::new(&block)
            .map_err(|d| damaged(table, &key, d))?
            .len() as u64;
    }
    Ok(n)
}

/// Splits sorted rows into blocks of the target size.
fn chunks(rows: &[(Vec<u8>, Vec<u8>)]) -> Vec<&[(Vec<u8>, Vec<u8>)]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (i, (id, row)) in rows.iter().enumerate() {
        let size = id.len() + row.len() + 4;
        if i > start && (i - start == BLOCK_ROWS || bytes + size > BLOCK_BYTES) {
            out.push(&rows[start..i]);
            start = i;
            bytes = 0;
        }
        bytes += size;
    }
    if start < rows.len() {
        out.push(&rows[start..]);
    }
    out
}

fn encode_rows(rows: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    encode(
        rows.iter().map(|(i, r)| (i.as_slice(), r.as_slice())),
        rows.len(),
    )
}

/// Writes `rows` as new blocks keyed by their first ids.
fn new_blocks(rows: &[(Vec<u8>, Vec<u8>)], out: &mut BlockWrites) {
    for c in chunks(rows) {
        out.push((c[0].0.clone(), Some(encode_rows(c))));
    }
}

/// Turns row changes into block writes against the current contents of `tree`.
///
/// The caller must hold the generation's write lock, so that the blocks read here are still
/// the current ones when the writes are applied.
pub(crate) fn plan(table: &str, tree: &sled::Tree, writes: &RowWrites) -> Result<BlockWrites> {
    let mut out = BlockWrites::new();
    let mut pending = writes.iter().peekable();
    while let Some((first, _)) = pending.peek() {
        let covering = tree.range(..=first.as_slice()).next_back().transpose()?;
        let next_key = match &covering {
            Some((k, _)) => tree
                .range::<&[u8], _>((Bound::Excluded(k.as_ref()), Bound::Unbounded))
                .next(),
            None => tree.iter().next(),
        }
        .transpose()?
        .map(|(k, _)| k);
        let mut group: Vec<(&Vec<u8>, &Option<Vec<u8>>)> = Vec::new();
        while let Some((id, w)) = pending.peek() {
            if next_key
                .as_ref()
                .is_some_and(|n| id.as_slice() >= n.as_ref())
            {
                break;
            }
            group.push((*id, *w));
            pending.next();
        }
        let puts_only = |g: &[(&Vec<u8>, &Option<Vec<u8>>)]| -> Vec<(Vec<u8>, Vec<u8>)> {
            g.iter()
                .filter_map(|(id, w)| w.as_ref().map(|r| ((*id).clone(), r.clone())))
                .collect()
        };
        let Some((bkey, block)) = covering else {
            // Before the first block: deletes are no-ops, puts make new blocks.
            new_blocks(&puts_only(&group), &mut out);
            continue;
        };
        let existing = rows_of(table, &bkey, &block)?;
        let appends = existing.len() >= BLOCK_ROWS
            && existing.last().is_some_and(|(last, _)| group[0].0 > last)
            && group.iter().all(|(_, w)| w.is_some());
        if appends {
            // A full block followed by new ids (the usual case: fresh ids grow): leave it be.
            new_blocks(&puts_only(&group), &mut out);
            continue;
        }
        let mut merged: Vec<(Vec<u8>, Vec<u8>)> = Vec::with_capacity(existing.len() + group.len());
        let mut old = existing.into_iter().peekable();
        for (id, w) in group {
            while old.peek().is_some_and(|(oid, _)| oid < id) {
                merged.extend(old.next());
            }
            if old.peek().is_some_and(|(oid, _)| oid == id) {
                old.next();
            }
            if let Some(row) = w {
                merged.push((id.clone(), row.clone()));
            }
        }
        merged.extend(old);
        let bytes: usize = merged.iter().map(|(i, r)| i.len() + r.len() + 4).sum();
        if merged.is_empty() {
            out.push((bkey.to_vec(), None));
        } else if merged.len() <= 2 * BLOCK_ROWS && bytes <= 2 * BLOCK_BYTES {
            out.push((bkey.to_vec(), Some(encode_rows(&merged))));
        } else {
            let parts = chunks(&merged);
            out.push((bkey.to_vec(), Some(encode_rows(parts[0]))));
            for c in &parts[1..] {
                out.push((c[0].0.clone(), Some(encode_rows(c))));
            }
        }
    }
    Ok(out)
}

/// Applies block writes in one atomic sled batch.
pub(crate) fn apply(tree: &sled::Tree, writes: BlockWrites) -> Result<()> {
    let mut batch = sled::Batch::default();
    for (k, v) in writes {
        match v {
            Some(v) => batch.insert(k, v),
            None => batch.remove(k),
        }
    }
    tree.apply_batch(batch)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> sled::Tree {
        sled::Config::new()
            .temporary(true)
            .open()
            .unwrap()
            .open_tree("t")
            .unwrap()
    }

    fn put(writes: &mut RowWrites, id: &str, v: &str) {
        writes.insert(id.as_bytes().to_vec(), Some(v.as_bytes().to_vec()));
    }

    fn contents(t: &sled::Tree) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut last: Option<Vec<u8>> = None;
        for item in t.iter() {
            let (key, block) = item.unwrap();
            for r in BlockRows::new(&block).unwrap() {
                let (id, row) = r.unwrap();
                assert!(id >= &key[..], "row below its block key");
                assert!(
                    last.as_deref().is_none_or(|l| l < id),
                    "ids strictly increase"
                );
                last = Some(id.to_vec());
                out.push((
                    String::from_utf8(id.to_vec()).unwrap(),
                    String::from_utf8(row.to_vec()).unwrap(),
                ));
            }
        }
        out
    }

    fn write(t: &sled::Tree, w: &RowWrites) {
        apply(t, plan("T", t, w).unwrap()).unwrap();
    }

    #[test]
    fn merges_splits_replaces_and_deletes() {
        let t = tree();
        let mut expected = BTreeMap::new();
        // Interleaved ids written in several rounds, so rows land before, inside and after
        // existing blocks.
        for round in 0..5u32 {
            let mut w = RowWrites::new();
            for i in (0..400u32).filter(|i| i % 5 == round) {
                let id = format!("id{:04}", i * 7 % 400);
                let v = format!("r{round}-{i}");
                put(&mut w, &id, &v);
                expected.insert(id, v);
            }
            write(&t, &w);
            assert_eq!(
                contents(&t),
                expected.clone().into_iter().collect::<Vec<_>>()
            );
        }
        assert!(
            t.len() >= 400 / (2 * BLOCK_ROWS),
            "blocks were split: {}",
            t.len()
        );
        assert_eq!(count("T", &t).unwrap(), 400);
        // Replace some, delete some, delete missing ids.
        let mut w = RowWrites::new();
        for i in (0..400u32).step_by(3) {
            let id = format!("id{i:04}");
            if i % 2 == 0 {
                w.insert(id.clone().into_bytes(), None);
                expected.remove(&id);
            } else {
                put(&mut w, &id, "new");
                expected.insert(id, "new".into());
            }
        }
        w.insert(b"zz-missing".to_vec(), None);
        w.insert(b"00-missing".to_vec(), None);
        write(&t, &w);
        assert_eq!(
            contents(&t),
            expected.clone().into_iter().collect::<Vec<_>>()
        );
        assert_eq!(find("T", &t, b"id0003").unwrap(), Some(b"new".to_vec()));
        assert_eq!(find("T", &t, b"id0000").unwrap(), None);
        // Delete everything: no blocks remain.
        let all: RowWrites = expected
            .keys()
            .map(|k| (k.clone().into_bytes(), None))
            .collect();
        write(&t, &all);
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn appends_leave_full_blocks_alone() {
        let t = tree();
        for i in 0..100u32 {
            let mut w = RowWrites::new();
            put(&mut w, &format!("k{i:03}"), "v");
            let planned = plan("T", &t, &w).unwrap();
            assert_eq!(planned.len(), 1, "one block written per single append");
            apply(&t, planned).unwrap();
        }
        assert_eq!(count("T", &t).unwrap(), 100);
        assert_eq!(t.len(), 4, "blocks of {BLOCK_ROWS} rows");
    }

    #[test]
    fn damaged_blocks_are_errors() {
        assert!(BlockRows::new(b"").is_err());
        assert!(BlockRows::new(&[9, 1]).is_err());
        let block = encode([(&b"a"[..], &b"row"[..])], 1);
        for cut in 1..block.len() {
            let r: Result<Vec<_>, _> = BlockRows::new(&block[..cut]).and_then(|b| b.collect());
            assert!(r.is_err(), "cut at {cut}");
        }
    }
}
