//! Layer compression: gzip compressed on several threads (pigz-style: the input
//! is cut into chunks that are deflated in parallel and joined with sync
//! flushes into one gzip member), or multi-threaded zstd. Both are
//! deterministic for the same input and settings.

use flate2::{Compress, FlushCompress};
use std::io::{self, Write};

/// How layers are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    /// gzip (`tar+gzip`), the most widely accepted.
    #[default]
    Gzip,
    /// zstd (`tar+zstd`).
    Zstd,
    /// No compression (`tar`).
    None,
}

impl Compression {
    /// The layer media type for this compression.
    pub fn media_type(self) -> &'static str {
        match self {
            Compression::Gzip => crate::oci::MEDIA_LAYER_GZIP,
            Compression::Zstd => crate::oci::MEDIA_LAYER_ZSTD,
            Compression::None => crate::oci::MEDIA_LAYER_TAR,
        }
    }
}

impl std::str::FromStr for Compression {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "gzip" => Ok(Compression::Gzip),
            "zstd" => Ok(Compression::Zstd),
            "uncompressed" | "none" => Ok(Compression::None),
            other => Err(format!(
                "unknown compression '{other}': expected gzip, zstd or uncompressed"
            )),
        }
    }
}

/// Worker threads for compression: the machine's parallelism.
fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// A compressing writer of any kind.
pub enum Compressor<W: Write> {
    /// Parallel gzip.
    Gzip(ParallelGzip<W>),
    /// zstd.
    Zstd(zstd::Encoder<'static, W>),
    /// Pass-through.
    None(W),
}

impl<W: Write> Compressor<W> {
    /// Starts compressing into `inner`.
    pub fn new(kind: Compression, inner: W) -> io::Result<Self> {
        Ok(match kind {
            Compression::Gzip => Compressor::Gzip(ParallelGzip::new(inner)),
            Compression::Zstd => {
                let mut encoder = zstd::Encoder::new(inner, 3)?;
                let workers = threads();
                if workers > 1 {
                    encoder.multithread(u32::try_from(workers).unwrap_or(1))?;
                }
                Compressor::Zstd(encoder)
            }
            Compression::None => Compressor::None(inner),
        })
    }

    /// Writes the end of the stream and returns the inner writer.
    pub fn finish(self) -> io::Result<W> {
        match self {
            Compressor::Gzip(g) => g.finish(),
            Compressor::Zstd(z) => z.finish(),
            Compressor::None(w) => Ok(w),
        }
    }
}

impl<W: Write> Write for Compressor<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Compressor::Gzip(g) => g.write(buf),
            Compressor::Zstd(z) => z.write(buf),
            Compressor::None(w) => w.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Compressor::Gzip(g) => g.flush(),
            Compressor::Zstd(z) => z.flush(),
            Compressor::None(w) => w.flush(),
        }
    }
}

const CHUNK: usize = 1 << 20;
const GZIP_LEVEL: u32 = 6;

/// gzip compressed in parallel chunks; one gzip member, readable by any gunzip.
///
/// Full chunks are handed to worker threads as soon as they fill, so reading
/// and archiving go on while earlier chunks compress; outputs are written in
/// order, and at most a few chunks per core are in flight.
pub struct ParallelGzip<W: Write> {
    inner: W,
    in_flight: std::collections::VecDeque<std::thread::JoinHandle<io::Result<Vec<u8>>>>,
    current: Vec<u8>,
    crc: crc32fast::Hasher,
    total: u64,
    max_in_flight: usize,
    header_written: bool,
}

impl<W: Write> ParallelGzip<W> {
    /// Starts a gzip stream into `inner`.
    pub fn new(inner: W) -> Self {
        ParallelGzip {
            inner,
            in_flight: std::collections::VecDeque::new(),
            current: Vec::with_capacity(CHUNK),
            crc: crc32fast::Hasher::new(),
            total: 0,
            max_in_flight: threads().max(1) * 2,
            header_written: false,
        }
    }

    fn write_header(&mut self) -> io::Result<()> {
        if !self.header_written {
            // Magic, deflate, no flags, mtime 0, no extra flags, OS unknown:
            // a fixed header keeps the output deterministic.
            self.inner
                .write_all(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff])?;
            self.header_written = true;
        }
        Ok(())
    }

    /// Writes the output of the oldest chunk in flight.
    fn write_oldest(&mut self) -> io::Result<()> {
        if let Some(handle) = self.in_flight.pop_front() {
            let out = handle
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("a compression thread panicked")))?;
            self.inner.write_all(&out)?;
        }
        Ok(())
    }

    /// Hands a chunk to a worker; the last one ends the deflate stream.
    fn submit(&mut self, chunk: Vec<u8>, last: bool) -> io::Result<()> {
        while self.in_flight.len() >= self.max_in_flight {
            self.write_oldest()?;
        }
        self.in_flight
            .push_back(std::thread::spawn(move || deflate_chunk(&chunk, last)));
        Ok(())
    }

    /// Ends the stream (trailer: CRC-32 and length) and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.write_header()?;
        let rest = std::mem::take(&mut self.current);
        self.submit(rest, true)?;
        while !self.in_flight.is_empty() {
            self.write_oldest()?;
        }
        let crc = self.crc.clone().finalize();
        self.inner.write_all(&crc.to_le_bytes())?;
        // ISIZE is the length modulo 2^32 by definition.
        self.inner
            .write_all(&((self.total & 0xffff_ffff) as u32).to_le_bytes())?;
        self.inner.flush()?;
        Ok(self.inner)
    }
}

fn deflate_chunk(chunk: &[u8], finish: bool) -> io::Result<Vec<u8>> {
    let mut compress = Compress::new(flate2::Compression::new(GZIP_LEVEL), false);
    let mut out = Vec::with_capacity(chunk.len() / 2 + 1024);
    let flush = if finish {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    loop {
        let consumed = usize::try_from(compress.total_in()).unwrap_or(usize::MAX);
        let input = chunk.get(consumed..).unwrap_or(&[]);
        if out.capacity() - out.len() < 64 {
            out.reserve(out.len().max(4096));
        }
        let status = compress
            .compress_vec(input, &mut out, flush)
            .map_err(io::Error::other)?;
        let done_input = compress.total_in() as usize >= chunk.len();
        match status {
            flate2::Status::StreamEnd => break,
            _ if done_input && !finish && out.capacity() > out.len() => break,
            _ => {}
        }
    }
    Ok(out)
}

impl<W: Write> Write for ParallelGzip<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_header()?;
        let room = CHUNK - self.current.len();
        let n = room.min(buf.len());
        self.current.extend_from_slice(&buf[..n]);
        self.crc.update(&buf[..n]);
        self.total += n as u64;
        if self.current.len() == CHUNK {
            let full = std::mem::replace(&mut self.current, Vec::with_capacity(CHUNK));
            self.submit(full, false)?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Opens a possibly compressed stream, detecting gzip, zstd or plain tar by its
/// first bytes.
pub fn decompress<'a, R: io::BufRead + 'a>(mut reader: R) -> io::Result<Box<dyn io::Read + 'a>> {
    let head = reader.fill_buf()?;
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(flate2::bufread::MultiGzDecoder::new(reader)))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Ok(Box::new(zstd::Decoder::with_buffer(reader)?))
    } else {
        Ok(Box::new(reader))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn sample(len: usize) -> Vec<u8> {
        // Compressible but not trivial: a counter mixed with text.
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31) ^ b"berth layer"[i % 11])
            .collect()
    }

    #[test]
    fn parallel_gzip_round_trips_through_a_standard_decoder() {
        for len in [0, 1, CHUNK - 1, CHUNK, CHUNK * 5 + 17] {
            let data = sample(len);
            let mut gz = ParallelGzip::new(Vec::new());
            for piece in data.chunks(70_001) {
                gz.write_all(piece).unwrap();
            }
            let compressed = gz.finish().unwrap();
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(&compressed[..])
                .read_to_end(&mut out)
                .unwrap();
            assert_eq!(out, data, "length {len}");
        }
    }

    #[test]
    fn compression_is_deterministic_and_detected() {
        let data = sample(3 * CHUNK);
        for kind in [Compression::Gzip, Compression::Zstd, Compression::None] {
            let run = || {
                let mut c = Compressor::new(kind, Vec::new()).unwrap();
                c.write_all(&data).unwrap();
                c.finish().unwrap()
            };
            let a = run();
            assert_eq!(a, run(), "{kind:?} output differs between runs");
            let mut out = Vec::new();
            decompress(&a[..]).unwrap().read_to_end(&mut out).unwrap();
            assert_eq!(out, data, "{kind:?}");
        }
    }
}
