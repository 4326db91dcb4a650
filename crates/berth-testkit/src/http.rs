//! Just enough HTTP/1.1 to speak to a registry on loopback: one request
//! per connection (`Connection: close`), bodies framed by Content-Length,
//! chunked encoding or end of stream. Blocking, so callers need no
//! runtime; no TLS, because the registry only ever listens on 127.0.0.1.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use crate::{Error, Result};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Generous: a registry on a loaded 2-core machine can stall for a while,
/// but a test must not hang forever on a wedged one.
const IO_TIMEOUT: Duration = Duration::from_secs(60);
const MAX_HEADER_LINE: u64 = 64 * 1024;

#[derive(Debug)]
pub(crate) struct Response {
    pub status: u16,
    headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends one request to `host` (`ip:port`); `target` is the path and query.
pub(crate) fn send(
    host: &str,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<Response> {
    let url = format!("http://{host}{target}");
    let io = |e: std::io::Error| Error::io(format!("{method} {url}"), e);
    let addr = host
        .to_socket_addrs()
        .map_err(io)?
        .next()
        .ok_or_else(|| Error::Invalid(format!("{host}: no address")))?;
    let mut stream = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT).map_err(io)?;
    stream.set_read_timeout(Some(IO_TIMEOUT)).map_err(io)?;
    stream.set_write_timeout(Some(IO_TIMEOUT)).map_err(io)?;

    let mut head = format!(
        "{method} {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).map_err(io)?;
    stream.write_all(body).map_err(io)?;
    stream.flush().map_err(io)?;

    let mut reader = BufReader::new(stream);
    let status_line = read_line(&mut reader).map_err(io)?;
    let status = parse_status(&status_line).ok_or_else(|| {
        Error::Protocol(format!("{method} {url}: bad status line {status_line:?}"))
    })?;
    let mut headers = Vec::new();
    loop {
        let line = read_line(&mut reader).map_err(io)?;
        if line.is_empty() {
            break;
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| Error::Protocol(format!("{method} {url}: bad header {line:?}")))?;
        headers.push((name.trim().to_owned(), value.trim().to_owned()));
    }
    let mut response = Response {
        status,
        headers,
        body: Vec::new(),
    };
    // RFC 9112 §6.3: these never carry a body, whatever the headers say.
    if method == "HEAD" || status == 204 || status == 304 || (100..200).contains(&status) {
        return Ok(response);
    }
    let chunked = response
        .header("transfer-encoding")
        .is_some_and(|te| te.to_ascii_lowercase().contains("chunked"));
    if chunked {
        response.body = read_chunked(&mut reader)
            .map_err(io)?
            .ok_or_else(|| Error::Protocol(format!("{method} {url}: bad chunked body")))?;
    } else if let Some(length) = response.header("content-length") {
        let length: usize = length.parse().map_err(|_| {
            Error::Protocol(format!("{method} {url}: bad Content-Length {length:?}"))
        })?;
        response.body = vec![0; length];
        reader.read_exact(&mut response.body).map_err(io)?;
    } else {
        reader.read_to_end(&mut response.body).map_err(io)?;
    }
    Ok(response)
}

/// One CRLF-terminated line without its terminator; an error at EOF.
fn read_line(reader: &mut impl BufRead) -> std::io::Result<String> {
    let mut line = Vec::new();
    reader.take(MAX_HEADER_LINE).read_until(b'\n', &mut line)?;
    if line.last() != Some(&b'\n') {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "connection closed in the middle of the response head",
        ));
    }
    line.pop();
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    Ok(String::from_utf8_lossy(&line).into_owned())
}

fn parse_status(line: &str) -> Option<u16> {
    let mut parts = line.splitn(3, ' ');
    if !parts.next()?.starts_with("HTTP/1.") {
        return None;
    }
    parts.next()?.parse().ok()
}

/// `None` if the framing is malformed.
fn read_chunked(reader: &mut impl BufRead) -> std::io::Result<Option<Vec<u8>>> {
    let mut body = Vec::new();
    loop {
        let line = read_line(reader)?;
        let size = line.split(';').next().unwrap_or("").trim();
        let Ok(size) = usize::from_str_radix(size, 16) else {
            return Ok(None);
        };
        if size == 0 {
            // Trailers, up to the blank line.
            while !read_line(reader)?.is_empty() {}
            return Ok(Some(body));
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..])?;
        if !read_line(reader)?.is_empty() {
            return Ok(None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_bodies_are_reassembled_and_trailers_skipped() {
        let wire = b"4;ext=1\r\nWiki\r\n6\r\npedia \r\nE\r\nin \r\n\r\nchunks.\r\n0\r\nX-Trailer: y\r\n\r\n";
        let body = read_chunked(&mut &wire[..]).unwrap().unwrap();
        assert_eq!(body, b"Wikipedia in \r\n\r\nchunks.");
    }

    #[test]
    fn malformed_chunk_framing_is_rejected() {
        assert!(read_chunked(&mut &b"zz\r\n"[..]).unwrap().is_none());
        assert!(
            read_chunked(&mut &b"2\r\nabc\r\n0\r\n\r\n"[..])
                .unwrap()
                .is_none()
        );
        assert!(
            read_chunked(&mut &b"5\r\nab"[..]).is_err(),
            "truncated chunk"
        );
    }

    #[test]
    fn status_lines() {
        assert_eq!(parse_status("HTTP/1.1 202 Accepted"), Some(202));
        assert_eq!(parse_status("HTTP/1.0 404"), Some(404));
        assert_eq!(parse_status("SSH-2.0-OpenSSH"), None);
    }
}
