//! Replacing a file atomically and privately: write a temp file in the same folder, fsync it,
//! rename it over the target. Used for the context file, the compacted results file and the
//! status file, so a crash or Ctrl-C never leaves half a file behind.

use std::fs::File;
use std::io;
use std::path::Path;

/// Replaces `path` with what `write` puts into the temp file. The file ends up mode 0600: every
/// file this tool replaces holds tokens or customers' contact details.
/// A symlinked `path` keeps its link: the file it points at is what gets replaced.
pub fn replace(path: &Path, write: impl FnOnce(&File) -> io::Result<()>) -> io::Result<()> {
    let resolved;
    let path = if path
        .symlink_metadata()
        .is_ok_and(|m| m.file_type().is_symlink())
    {
        resolved = crate::paths::resolve(path);
        resolved.as_path()
    } else {
        path
    };
    let folder = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let temp = tempfile::Builder::new()
        .prefix(".bunq-onboard-")
        .tempfile_in(folder)?;
    // tempfile creates files 0600 on Unix; set it explicitly so that stays true.
    set_owner_only(temp.as_file())?;
    write(temp.as_file())?;
    temp.as_file().sync_all()?;
    temp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Takes group and other access away from an existing file that holds tokens or personal
/// data (copied with `cp`, restored from a backup, made by hand). Returns the mode it had when
/// it was changed, for the caller's warning.
#[cfg(unix)]
pub(crate) fn restrict_to_owner(path: &Path) -> io::Result<Option<u32>> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)?.permissions().mode();
    if mode & 0o077 == 0 {
        return Ok(None);
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(Some(mode & 0o777))
}

#[cfg(not(unix))]
pub(crate) fn restrict_to_owner(_path: &Path) -> io::Result<Option<u32>> {
    Ok(None)
}

#[cfg(unix)]
fn set_owner_only(file: &File) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))
}

#[cfg(not(unix))]
fn set_owner_only(_file: &File) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    #[test]
    fn replaces_the_file_whole_and_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.txt");
        std::fs::write(&path, "old").unwrap();
        super::replace(&path, |mut file| file.write_all(b"new")).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // A failed write leaves the old file as it was.
        let failed = super::replace(&path, |_| Err(std::io::Error::other("boom")));
        assert!(failed.is_err());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temp file left"
        );
    }

    #[cfg(unix)]
    #[test]
    fn regression_symlinked_target_was_replaced_by_a_regular_file() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("real.csv");
        std::fs::write(&target, "old").unwrap();
        let link = dir.path().join("link.csv");
        std::os::unix::fs::symlink("real.csv", &link).unwrap();
        super::replace(&link, |mut file| file.write_all(b"new")).unwrap();
        assert!(link.symlink_metadata().unwrap().file_type().is_symlink());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "new");
    }
}
