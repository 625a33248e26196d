//! The log of a container: one JSON object per line, as Docker's
//! json-file driver writes them (`{"log":"text\n","stream":"stdout","time":…}`),
//! so the two streams keep their order and can be told apart.

use crate::executor::Stream;
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

/// The log's file name in the container's directory.
pub const LOG_FILE: &str = "container.log";

/// A line longer than this is written in pieces, as Docker splits at 16 KiB.
const MAX_ENTRY: usize = 16 * 1024;

/// One log entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The text, with its newline when it ended a line.
    pub log: String,
    /// `stdout` or `stderr`.
    pub stream: String,
    /// When berth read it, RFC 3339.
    pub time: String,
}

/// Appends entries to a log file; shared by the threads reading the streams.
#[derive(Debug)]
pub struct LogWriter {
    file: Mutex<File>,
}

impl LogWriter {
    /// Opens (creating) the log for appending.
    pub fn open(path: &Path) -> io::Result<LogWriter> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(LogWriter {
            file: Mutex::new(file),
        })
    }

    /// Writes one entry.
    pub fn write(&self, stream: Stream, bytes: &[u8]) -> io::Result<()> {
        let entry = Entry {
            log: String::from_utf8_lossy(bytes).into_owned(),
            stream: match stream {
                Stream::Stdout => "stdout".into(),
                Stream::Stderr => "stderr".into(),
            },
            time: berth_store::oci::rfc3339(super::now()),
        };
        let mut line = serde_json::to_vec(&entry).map_err(io::Error::other)?;
        line.push(b'\n');
        let mut file = self
            .file
            .lock()
            .map_err(|_| io::Error::other("the log writer's lock is poisoned"))?;
        // One write per entry, so a reader never sees two entries interleaved.
        file.write_all(&line)
    }

    /// Copies `reader` into the log line by line until it ends; each read
    /// also goes to `shown` as it comes, if given (a foreground container's
    /// output on berth's own streams). A `shown` that fails stops only the
    /// showing.
    pub fn pump(
        &self,
        mut reader: impl Read,
        stream: Stream,
        mut shown: Option<File>,
    ) -> io::Result<()> {
        let mut pending: Vec<u8> = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // A terminal's master reports EIO once the last slave closes.
                Err(e) if e.raw_os_error() == Some(libc::EIO) => break,
                Err(e) => return Err(e),
            };
            if let Some(out) = &mut shown
                && out.write_all(&buf[..n]).is_err()
            {
                shown = None;
            }
            pending.extend_from_slice(&buf[..n]);
            while let Some(end) = pending.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = pending.drain(..=end).collect();
                self.write(stream, &line)?;
            }
            while pending.len() >= MAX_ENTRY {
                let piece: Vec<u8> = pending.drain(..MAX_ENTRY).collect();
                self.write(stream, &piece)?;
            }
        }
        if !pending.is_empty() {
            self.write(stream, &pending)?;
        }
        Ok(())
    }
}

/// How [`copy`] shows a log.
#[derive(Debug, Clone, Copy, Default)]
pub struct CopyOptions {
    /// Keep waiting for more while the container runs (`logs -f`).
    pub follow: bool,
    /// Only the last this many entries of what is there already (`--tail`).
    pub tail: Option<usize>,
    /// Start each entry with the time berth read it (`-t`).
    pub timestamps: bool,
}

/// Copies the log at `path` to `stdout` and `stderr` by stream. With
/// `follow`, keeps waiting for more while `running()` says the container
/// still runs, then copies what is left.
pub fn copy(
    path: &Path,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
    options: CopyOptions,
    running: &dyn Fn() -> bool,
) -> io::Result<()> {
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    let mut offset = 0u64;
    let mut pending = Vec::new();
    let mut skip = None;
    loop {
        // Checked before reading, so output written before the exit is read.
        let still_running = options.follow && running();
        file.seek(SeekFrom::Start(offset))?;
        let n = file.read_to_end(&mut pending)?;
        offset += n as u64;
        let mut entries = Vec::new();
        while let Some(end) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            match serde_json::from_slice::<Entry>(&line) {
                Ok(entry) => entries.push(entry),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "skipping an unreadable log entry")
                }
            }
        }
        // --tail applies to what was there at the start only.
        let skip = *skip.get_or_insert_with(|| {
            options
                .tail
                .map_or(0, |tail| entries.len().saturating_sub(tail))
        });
        for entry in entries.iter().skip(skip) {
            let out: &mut dyn Write = if entry.stream == "stderr" {
                &mut *stderr
            } else {
                &mut *stdout
            };
            if options.timestamps {
                out.write_all(entry.time.as_bytes())?;
                out.write_all(b" ")?;
            }
            out.write_all(entry.log.as_bytes())?;
            out.flush()?;
        }
        if !still_running {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_keep_order_and_partial_lines_survive() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LOG_FILE);
        let log = LogWriter::open(&path).unwrap();
        log.pump(&b"one\ntwo\nthree"[..], Stream::Stdout, None)
            .unwrap();
        log.pump(&b"oops\n"[..], Stream::Stderr, None).unwrap();
        let long = vec![b'x'; MAX_ENTRY + 10];
        log.pump(&long[..], Stream::Stdout, None).unwrap();
        let (mut out, mut err) = (Vec::new(), Vec::new());
        copy(&path, &mut out, &mut err, CopyOptions::default(), &|| false).unwrap();
        let mut want = b"one\ntwo\nthree".to_vec();
        want.extend_from_slice(&long);
        assert_eq!(out, want);
        assert_eq!(err, b"oops\n");
        let entries = std::fs::read_to_string(&path).unwrap();
        assert_eq!(entries.lines().count(), 6);

        let (mut out, mut err) = (Vec::new(), Vec::new());
        let tail = CopyOptions {
            tail: Some(3),
            timestamps: true,
            ..Default::default()
        };
        copy(&path, &mut out, &mut err, tail, &|| false).unwrap();
        let out = String::from_utf8(out).unwrap();
        let err = String::from_utf8(err).unwrap();
        // The last three entries: "oops\n" and the long line in two pieces.
        assert!(err.ends_with("Z oops\n"), "{err}");
        assert_eq!(out.matches("Z x").count(), 2, "{out}");
        assert!(!out.contains("three"));
    }

    #[test]
    fn follow_reads_until_the_container_stops() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LOG_FILE);
        let log = LogWriter::open(&path).unwrap();
        let polls = std::sync::atomic::AtomicUsize::new(0);
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let follow = CopyOptions {
            follow: true,
            ..Default::default()
        };
        copy(&path, &mut out, &mut err, follow, &|| {
            let n = polls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            log.write(Stream::Stdout, format!("{n}\n").as_bytes())
                .unwrap();
            n < 2
        })
        .unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "0\n1\n2\n");
    }
}
