//! A program's output: to its own log file and to stdout, each line prefixed with its name.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};

/// Where one program's lines go.
#[derive(Clone)]
pub struct ProgramLog {
    name: String,
    file: Option<Arc<Mutex<File>>>,
}

impl ProgramLog {
    /// Appends to `<dir>/<name>.log`; without a log file (unwritable directory) lines still
    /// reach stdout.
    pub fn open(dir: &Path, name: &str) -> ProgramLog {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(format!("{name}.log")))
            .map_err(|e| eprintln!("[supervise] cannot open the log file of {name} in {}: {e}", dir.display()))
            .ok()
            .map(|f| Arc::new(Mutex::new(f)));
        ProgramLog { name: name.into(), file }
    }

    /// Writes one line of the supervisor's own about this program (start, exit).
    pub fn note(&self, line: &str) {
        self.line(&format!("[supervise] {line}"));
    }

    /// To stdout first: a line in the log file is then on stdout too, even when the
    /// supervisor exits straight after (it does not wait for the copying threads).
    fn line(&self, line: &str) {
        let stdout = std::io::stdout();
        let _ = writeln!(stdout.lock(), "[{}] {line}", self.name);
        if let Some(file) = &self.file {
            let mut file = file.lock().unwrap_or_else(|e| e.into_inner());
            let _ = writeln!(file, "{line}");
        }
    }

    /// Copies a pipe's lines on a thread of their own until the pipe closes (the program and
    /// everything it started have exited).
    pub fn pump(&self, pipe: impl Read + Send + 'static) {
        let log = self.clone();
        let spawned = std::thread::Builder::new().name(format!("log-{}", self.name)).spawn(move || {
            let mut reader = BufReader::new(pipe);
            let mut buffer = Vec::new();
            loop {
                buffer.clear();
                match reader.read_until(b'\n', &mut buffer) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => log.line(String::from_utf8_lossy(&buffer).trim_end_matches(['\n', '\r'])),
                }
            }
        });
        if let Err(e) = spawned {
            eprintln!("[supervise] cannot start the log thread of {}: {e}", self.name);
        }
    }
}
