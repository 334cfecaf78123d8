//! IMDSv2 instance identity, over plain HTTP/1.1 on a `TcpStream` to the
//! link-local address (the only network use of `capture`), with about a
//! second in total: a token (`PUT /latest/api/token`), then
//! `/latest/dynamic/instance-identity/document`, and its AWS signature
//! `/latest/dynamic/instance-identity/pkcs7`. A host that is not on EC2,
//! or whose IMDS is disabled or IMDSv1-only, just yields no identity.
//!
//! The document's fields go into the manifest; the document's exact bytes
//! and the signature are kept too ([`Identity`]), because root on the
//! suspect can fake IMDS (a DNAT of the link-local address): only AWS's
//! signature over those bytes lets the analyst trust the instance ID.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use std::ffi::OsStr;

use fv_core::fs::Dir;
use fv_evidence::manifest::{self, FileEntry, Imds};

use crate::output;

/// The IMDS address.
pub const ENDPOINT: &str = "169.254.169.254:80";
/// Total time allowed.
pub const BUDGET: Duration = Duration::from_millis(1000);
/// Largest response accepted.
const MAX_RESPONSE: u64 = 64 << 10;

/// Why IMDS gave nothing.
#[derive(Debug, thiserror::Error)]
pub enum ImdsError {
    /// Connect/read/write failed or timed out.
    #[error("IMDS {step}: {source}")]
    Io {
        /// Which request.
        step: &'static str,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// Non-200 status or malformed response.
    #[error("IMDS {step}: {what}")]
    Http {
        /// Which request.
        step: &'static str,
        /// What was wrong.
        what: String,
    },
    /// Out of time.
    #[error("IMDS did not answer within {} ms", BUDGET.as_millis())]
    Timeout,
}

fn request(
    endpoint: &str,
    deadline: Instant,
    step: &'static str,
    req: &str,
) -> Result<String, ImdsError> {
    let io = |source| ImdsError::Io { step, source };
    let left = deadline
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())
        .ok_or(ImdsError::Timeout)?;
    let addr = endpoint
        .to_socket_addrs()
        .map_err(io)?
        .next()
        .ok_or(ImdsError::Http {
            step,
            what: format!("{endpoint}: no address"),
        })?;
    let mut s = TcpStream::connect_timeout(&addr, left).map_err(io)?;
    let left = deadline
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())
        .ok_or(ImdsError::Timeout)?;
    s.set_read_timeout(Some(left)).map_err(io)?;
    s.set_write_timeout(Some(left)).map_err(io)?;
    s.write_all(req.as_bytes()).map_err(io)?;
    let mut raw = Vec::new();
    s.take(MAX_RESPONSE).read_to_end(&mut raw).map_err(io)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").ok_or(ImdsError::Http {
        step,
        what: "no end of headers".into(),
    })?;
    let status = head.lines().next().unwrap_or_default();
    if status.split_whitespace().nth(1) != Some("200") {
        return Err(ImdsError::Http {
            step,
            what: format!("status {status:?}"),
        });
    }
    Ok(body.to_string())
}

/// Asks IMDSv2 for the identity document.
///
/// # Errors
/// [`ImdsError`] (the caller records it as a warning).
/// The identity as IMDS gave it.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The document's fields, for the manifest.
    pub imds: Imds,
    /// The document's exact bytes (what the signature covers).
    pub document: String,
    /// The PKCS#7 signature (base64, as IMDS sends it), or why it is missing.
    pub pkcs7: Result<String, String>,
}

pub fn identity(endpoint: &str) -> Result<Identity, ImdsError> {
    let deadline = Instant::now() + BUDGET;
    let host = endpoint.rsplit_once(':').map_or(endpoint, |(h, _)| h);
    let token = request(
        endpoint,
        deadline,
        "token",
        &format!(
            "PUT /latest/api/token HTTP/1.1\r\nHost: {host}\r\nX-aws-ec2-metadata-token-ttl-seconds: 60\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        ),
    )?;
    let token = token.trim();
    if token.is_empty() || token.len() > 512 || token.contains(['\r', '\n']) {
        return Err(ImdsError::Http {
            step: "token",
            what: "malformed token".into(),
        });
    }
    let doc = request(
        endpoint,
        deadline,
        "identity document",
        &format!(
            "GET /latest/dynamic/instance-identity/document HTTP/1.1\r\nHost: {host}\r\nX-aws-ec2-metadata-token: {token}\r\nConnection: close\r\n\r\n"
        ),
    )?;
    let v: serde_json::Value = serde_json::from_str(&doc).map_err(|e| ImdsError::Http {
        step: "identity document",
        what: format!("not JSON: {e}"),
    })?;
    let f = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_owned);
    let pkcs7 = request(
        endpoint,
        deadline,
        "identity signature",
        &format!(
            "GET /latest/dynamic/instance-identity/pkcs7 HTTP/1.1\r\nHost: {host}\r\nX-aws-ec2-metadata-token: {token}\r\nConnection: close\r\n\r\n"
        ),
    )
    .map_err(|e| e.to_string());
    let imds = Imds {
        instance_id: f("instanceId"),
        account_id: f("accountId"),
        region: f("region"),
        availability_zone: f("availabilityZone"),
        instance_type: f("instanceType"),
        image_id: f("imageId"),
        architecture: f("architecture"),
        private_ip: f("privateIp"),
    };
    Ok(Identity {
        imds,
        document: doc,
        pkcs7,
    })
}

/// Context files of the IMDS identity: the document's exact bytes and AWS's
/// PKCS#7 signature over them, so the analyst can check the instance
/// identity against AWS's public certificate (root on the suspect can fake
/// IMDS). Returns their file entries and warnings.
pub fn keep_identity(cdir: &Dir, id: &Identity) -> (Vec<FileEntry>, Vec<String>) {
    let mut entries = Vec::new();
    let mut warnings = Vec::new();
    let ctx = match cdir.open_dir(OsStr::new(manifest::CONTEXT_DIR)) {
        Ok(d) => d,
        Err(e) => {
            warnings.push(format!("IMDS identity not kept: {e}"));
            return (entries, warnings);
        }
    };
    let mut keep = |name: &str, bytes: &[u8]| match output::write_atomic(&ctx, name, bytes) {
        Ok(sha256) => entries.push(FileEntry {
            path: format!("{}/{name}", manifest::CONTEXT_DIR),
            size: bytes.len() as u64,
            sha256,
        }),
        Err(e) => warnings.push(format!("context/{name} not written: {e}")),
    };
    keep(IMDS_DOCUMENT_FILE, id.document.as_bytes());
    match &id.pkcs7 {
        Ok(sig) => keep(IMDS_PKCS7_FILE, sig.as_bytes()),
        Err(why) => warnings.push(format!(
            "IMDS identity signature (pkcs7) not kept: {why}; the instance identity cannot be checked against AWS's signature"
        )),
    }
    (entries, warnings)
}

/// The IMDS identity document as IMDS sent it (in `context/`).
pub const IMDS_DOCUMENT_FILE: &str = "imds-identity-document.json";
/// AWS's PKCS#7 signature of that document (in `context/`).
pub const IMDS_PKCS7_FILE: &str = "imds-identity.pkcs7";

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufRead;
    use std::net::TcpListener;

    /// A peer that answers like IMDSv2 (and checks the token header).
    fn fake_imds() -> String {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        std::thread::spawn(move || {
            for _ in 0..3 {
                let (s, _) = l.accept().unwrap();
                let mut r = std::io::BufReader::new(s.try_clone().unwrap());
                let mut lines = Vec::new();
                loop {
                    let mut line = String::new();
                    r.read_line(&mut line).unwrap();
                    if line == "\r\n" || line.is_empty() {
                        break;
                    }
                    lines.push(line);
                }
                let mut s = s;
                let body = if lines[0].starts_with("PUT /latest/api/token") {
                    "TOKEN123".to_string()
                } else if lines[0].starts_with("GET /latest/dynamic/instance-identity/pkcs7")
                    && lines
                        .iter()
                        .any(|l| l.contains("X-aws-ec2-metadata-token: TOKEN123"))
                {
                    "MIAGCSqGSIb3DQEHAqCAMIACAQExCzAJ".to_string()
                } else if lines
                    .iter()
                    .any(|l| l.contains("X-aws-ec2-metadata-token: TOKEN123"))
                {
                    r#"{"instanceId":"i-0123456789abcdef0","accountId":"123456789012","region":"eu-west-1","availabilityZone":"eu-west-1a","instanceType":"m6i.large","imageId":"ami-0abc","architecture":"x86_64"}"#.to_string()
                } else {
                    String::new()
                };
                let status = if body.is_empty() {
                    "401 Unauthorized"
                } else {
                    "200 OK"
                };
                write!(
                    s,
                    "HTTP/1.1 {status}\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                )
                .unwrap();
            }
        });
        addr
    }

    #[test]
    fn reads_identity_with_a_token() {
        let got = identity(&fake_imds()).unwrap();
        let id = &got.imds;
        assert_eq!(id.instance_id.as_deref(), Some("i-0123456789abcdef0"));
        assert_eq!(id.availability_zone.as_deref(), Some("eu-west-1a"));
        assert_eq!(id.private_ip, None);
        // L9: the exact document and AWS's signature over it are kept.
        assert!(
            got.document
                .starts_with(r#"{"instanceId":"i-0123456789abcdef0""#)
        );
        assert_eq!(got.pkcs7.as_deref(), Ok("MIAGCSqGSIb3DQEHAqCAMIACAQExCzAJ"));
    }

    #[test]
    fn silence_is_bounded() {
        // A listener that never answers: about a second, then an error.
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let t = Instant::now();
        assert!(identity(&addr).is_err());
        assert!(t.elapsed() < Duration::from_secs(3));
        drop(l);
    }
}
