//! SQLite is single-process: one `holdfast run`, `index`, `dev` or `reindex` writes a store file at a time.
//! A second one is refused at start with the first one's identity, instead of two indexers interleaving
//! their commits in one file. Postgres elects one writer per chain instead (`chain_task`).

use std::{io::Write, path::PathBuf};

use eyre::bail;

/// Held while this process writes a SQLite store: an exclusive lock on `<store>.writer.lock`, released by
/// the kernel when the process ends, however it ends (kill -9 included), so nothing stale is ever left.
#[derive(Debug)]
pub(crate) struct SqliteWriterLock {
    _file: std::fs::File,
}

/// The store file of a `sqlite:` URL (`None`: Postgres, or an in-memory database).
fn sqlite_path(db_url: &str) -> Option<PathBuf> {
    let rest = db_url.strip_prefix("sqlite://").or_else(|| db_url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && !path.contains(":memory:")).then(|| PathBuf::from(path))
}

/// Take the writer lock of the SQLite store at `db_url` for `what` (`holdfast index`, …); `Ok(None)` for
/// Postgres. Refused while another process holds it.
pub(crate) fn lock_sqlite_writer(db_url: &str, what: &str) -> eyre::Result<Option<SqliteWriterLock>> {
    let Some(db) = sqlite_path(db_url) else { return Ok(None) };
    let path = PathBuf::from(format!("{}.writer.lock", db.display()));
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| eyre::eyre!("cannot open the SQLite writer lock {} ({e})", path.display()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let holder = std::fs::read_to_string(&path).unwrap_or_default();
            let holder = holder.trim();
            bail!(
                "another process already writes the SQLite store {} ({}): SQLite is single-process, one \
                 `holdfast run`, `index`, `dev` or `reindex` per file. Stop that one, or use Postgres \
                 (`--database-url postgres://…`) to run a writer and standbys",
                db.display(),
                if holder.is_empty() { "holder unknown" } else { holder }
            );
        }
        Err(std::fs::TryLockError::Error(e)) => {
            bail!("cannot lock the SQLite writer lock {} ({e})", path.display())
        }
    }
    file.set_len(0)?;
    write!(file, "pid={} ({what})", std::process::id())?;
    file.flush()?;
    Ok(Some(SqliteWriterLock { _file: file }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_of_sqlite_urls_only() {
        assert_eq!(sqlite_path("sqlite://data/holdfast.db"), Some(PathBuf::from("data/holdfast.db")));
        assert_eq!(sqlite_path("sqlite:/tmp/x.db?mode=rwc"), Some(PathBuf::from("/tmp/x.db")));
        assert_eq!(sqlite_path("sqlite::memory:"), None);
        assert_eq!(sqlite_path("postgres://h/db"), None);
    }

    #[test]
    fn a_second_writer_is_refused_until_the_first_lets_go() {
        let db = std::env::temp_dir().join(format!("holdfast-lock-{}.db", rand::random::<u64>()));
        let url = format!("sqlite://{}", db.display());
        let first = lock_sqlite_writer(&url, "holdfast index").unwrap().expect("a lock");
        let e = lock_sqlite_writer(&url, "holdfast run").unwrap_err().to_string();
        assert!(e.contains("another process already writes the SQLite store"), "{e}");
        assert!(e.contains(&format!("pid={} (holdfast index)", std::process::id())), "{e}");
        drop(first);
        let again = lock_sqlite_writer(&url, "holdfast run").unwrap();
        assert!(again.is_some());
        drop(again);
        let _ = std::fs::remove_file(format!("{}.writer.lock", db.display()));
    }
}
