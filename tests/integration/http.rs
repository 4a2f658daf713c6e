//! The HTTP/1.1 the test proxies in front of moto speak (s3_faults/proxy.rs, athena/proxy.rs):
//! one request per connection (`Connection: close`), request bodies framed by Content-Length,
//! responses by Content-Length or chunked. That is what the AWS SDK, object_store and moto use;
//! each proxy decides only what to do with a request.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A parsed HTTP message: start line, headers in order, body.
pub struct Message {
    pub start: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Message {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn method(&self) -> &str {
        self.start.split(' ').next().unwrap_or("")
    }

    /// Request target: `/bucket/key?query`.
    pub fn target(&self) -> &str {
        self.start.split(' ').nth(1).unwrap_or("")
    }

    pub fn status(&self) -> u16 {
        self.start
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    }

    /// Start line and headers, with `content-length` set to `content_length` (if given) and the
    /// connection closed after this message.
    pub fn encode_head(&self, content_length: Option<usize>) -> Vec<u8> {
        let mut out = format!("{}\r\n", self.start);
        for (k, v) in &self.headers {
            let drop = k.eq_ignore_ascii_case("connection")
                || k.eq_ignore_ascii_case("transfer-encoding")
                || (content_length.is_some() && k.eq_ignore_ascii_case("content-length"));
            if !drop {
                out.push_str(&format!("{k}: {v}\r\n"));
            }
        }
        if let Some(n) = content_length {
            out.push_str(&format!("content-length: {n}\r\n"));
        }
        out.push_str("connection: close\r\n\r\n");
        out.into_bytes()
    }

    /// [`Message::encode_head`] followed by the body.
    pub fn encode(&self, content_length: Option<usize>) -> Vec<u8> {
        let mut bytes = self.encode_head(content_length);
        bytes.extend_from_slice(&self.body);
        bytes
    }
}

/// Reads one whole request; `None` if the client closed the connection without sending one.
pub async fn read_request(conn: &mut TcpStream) -> std::io::Result<Option<Message>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 64 * 1024];
    let head_end = loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i;
        }
        let n = conn.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let mut msg = parse_head(&buf[..head_end]);
    if msg
        .header("transfer-encoding")
        .is_some_and(|v| v.contains("chunked"))
    {
        return Err(std::io::Error::other(format!(
            "chunked request body ({}) is not supported by the test proxy",
            msg.start
        )));
    }
    let len: usize = msg
        .header("content-length")
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < len {
        let n = conn.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::Error::other(
                "request body cut short by the client",
            ));
        }
        body.extend_from_slice(&chunk[..n]);
    }
    msg.body = body;
    Ok(Some(msg))
}

fn parse_head(head: &[u8]) -> Message {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split("\r\n");
    let start = lines.next().unwrap_or_default().to_string();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Message {
        start,
        headers,
        body: Vec::new(),
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Sends the request to moto on a fresh connection and reads its whole answer (moto closes the
/// connection after it, as asked).
pub async fn forward(upstream: SocketAddr, req: &Message) -> std::io::Result<Message> {
    let mut conn = TcpStream::connect(upstream).await?;
    conn.write_all(&req.encode(Some(req.body.len()))).await?;
    let mut raw = Vec::new();
    conn.read_to_end(&mut raw).await?;
    let head_end = find(&raw, b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other(format!("moto sent no answer to {}", req.start)))?;
    let mut msg = parse_head(&raw[..head_end]);
    let rest = &raw[head_end + 4..];
    msg.body = if msg
        .header("transfer-encoding")
        .is_some_and(|v| v.contains("chunked"))
    {
        dechunk(rest)?
    } else {
        rest.to_vec()
    };
    Ok(msg)
}

fn dechunk(mut data: &[u8]) -> std::io::Result<Vec<u8>> {
    let bad = || std::io::Error::other("bad chunked answer from moto");
    let mut out = Vec::new();
    loop {
        let line_end = find(data, b"\r\n").ok_or_else(bad)?;
        let size_text = String::from_utf8_lossy(&data[..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| bad())?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        out.extend_from_slice(data.get(..size).ok_or_else(bad)?);
        data = data.get(size + 2..).ok_or_else(bad)?;
    }
}
