//! What a stream did not carry: the host's System RAM it sent no record for
//! ([`ram_gaps`]) and the records a LiME file still holds after a stop
//! ([`headers_from`]).

use fv_formats::iomem::RamRange;
use fv_formats::lime::{HEADER_LEN, Header};

use super::ingest::MAX_RECORDS;

/// Why a range of a stream of this host is in `omitted` when the stream
/// went past it without a record (security review S4).
pub const NO_RECORD: &str = "the LiME stream sent no record for this System RAM";

/// The parts of the host's System RAM `ram` that no span of `covered`
/// (ascending `(start, end)` pairs, ends inclusive, as the records of a
/// LiME stream) holds: what a stream of this host did not send. Each gap is
/// `(start, end)`, end inclusive, in ascending order.
pub fn ram_gaps(ram: &[RamRange], covered: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut gaps = Vec::new();
    for r in ram {
        let mut cursor = Some(r.start);
        let first = covered.partition_point(|&(_, e)| e < r.start);
        for &(s, e) in covered.get(first..).unwrap_or(&[]) {
            let Some(c) = cursor else { break };
            if s > r.end {
                break;
            }
            if s > c {
                gaps.push((c, s - 1));
            }
            // e < r.end <= u64::MAX, so e + 1 does not wrap.
            cursor = (e < r.end).then(|| c.max(e + 1));
        }
        if let Some(c) = cursor
            && c <= r.end
        {
            gaps.push((c, r.end));
        }
    }
    gaps
}

/// The records of a LiME file from byte `offset` on, read header by header
/// (payloads are skipped, not read), up to [`MAX_RECORDS`].
///
/// # Errors
/// Where the file stops parsing as LiME, and why.
pub fn headers_from(
    file: &std::fs::File,
    mut offset: u64,
    after: Option<u64>,
) -> Result<Vec<(u64, u64)>, (u64, String)> {
    use std::os::unix::fs::FileExt;
    let len = file.metadata().map_err(|e| (offset, e.to_string()))?.len();
    let mut out = Vec::new();
    let mut previous = after;
    while offset < len && out.len() < MAX_RECORDS {
        let mut b = [0u8; HEADER_LEN];
        file.read_exact_at(&mut b, offset)
            .map_err(|e| (offset, e.to_string()))?;
        let h = Header::parse(&b, 0, offset).map_err(|e| (offset, e.to_string()))?;
        if previous.is_some_and(|p| h.start <= p) {
            return Err((offset, "records out of order".into()));
        }
        previous = Some(h.end);
        out.push((h.start, h.end));
        let payload = h.payload_len().unwrap_or(u64::MAX);
        offset = offset
            .saturating_add(HEADER_LEN as u64)
            .saturating_add(payload);
    }
    Ok(out)
}
