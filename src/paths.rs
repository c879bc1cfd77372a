//! Path guards: before a command writes anything, the files it will write are checked against
//! every file it reads and against each other, so a slip such as `--errors users.csv` is a
//! refusal (exit 2), never a destroyed input.
//!
//! Two paths name the same file when their canonical forms match (symlinks and `..` resolved,
//! the folder of a file not yet created included) or, for files that exist, when they share a
//! device and inode (hard links, bind mounts).

use std::path::{Path, PathBuf};

/// What a command does with a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

/// One path a command uses, named as the operator gave it (a flag, or "the input").
#[derive(Debug, Clone)]
pub struct PathUse<'a> {
    pub name: &'static str,
    pub path: &'a Path,
    pub access: Access,
}

impl<'a> PathUse<'a> {
    pub fn read(name: &'static str, path: &'a Path) -> Self {
        PathUse {
            name,
            path,
            access: Access::Read,
        }
    }

    pub fn write(name: &'static str, path: &'a Path) -> Self {
        PathUse {
            name,
            path,
            access: Access::Write,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PathClash {
    #[error(
        "{writer} and {other} are the same file ({path}): writing {writer} would destroy \
         {other}. Nothing was written; pass another path for {writer}"
    )]
    SameFile {
        writer: &'static str,
        other: &'static str,
        path: PathBuf,
    },
    #[error("{name} {path}: the folder {folder} does not exist. Nothing was written")]
    NoFolder {
        name: &'static str,
        path: PathBuf,
        folder: PathBuf,
    },
    #[error(
        "{name} {path} is not a regular file (a device, pipe or folder); bunq-onboard writes \
         only files. Nothing was written"
    )]
    NotAFile { name: &'static str, path: PathBuf },
    #[error("{name} -: an output cannot go to standard output; name a file. Nothing was written")]
    Dash { name: &'static str },
}

/// Refuses the first pair of uses that name one file where at least one of them writes it,
/// and a file to write in a folder that does not exist (found now, not after registering
/// and looking rows up). `-` (standard input) names no file and is skipped.
pub fn check_distinct(uses: &[PathUse<'_>]) -> Result<(), PathClash> {
    for used in uses.iter().filter(|u| u.access == Access::Write) {
        if used.path.as_os_str() == "-" {
            return Err(PathClash::Dash { name: used.name });
        }
        // Following symlinks: a link to /dev/null is a device too. Replacing or chmod-ing a
        // device node (as root) would break the machine for everyone.
        if std::fs::metadata(used.path).is_ok_and(|m| !m.is_file()) {
            return Err(PathClash::NotAFile {
                name: used.name,
                path: used.path.to_path_buf(),
            });
        }
        let folder = match used.path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        if !folder.is_dir() {
            return Err(PathClash::NoFolder {
                name: used.name,
                path: used.path.to_path_buf(),
                folder: folder.to_path_buf(),
            });
        }
    }
    let identities: Vec<Option<Identity>> = uses.iter().map(|u| Identity::of(u.path)).collect();
    for (i, first) in uses.iter().enumerate() {
        for (j, second) in uses.iter().enumerate().skip(i + 1) {
            if first.access == Access::Read && second.access == Access::Read {
                continue;
            }
            let (Some(a), Some(b)) = (&identities[i], &identities[j]) else {
                continue;
            };
            if a.same_file(b) {
                // When both write, the later one is the slip (the list names defaults first).
                let (writer, other) = if second.access == Access::Write {
                    (second, first)
                } else {
                    (first, second)
                };
                return Err(PathClash::SameFile {
                    writer: writer.name,
                    other: other.name,
                    path: a.canonical.clone(),
                });
            }
        }
    }
    Ok(())
}

#[derive(Debug, thiserror::Error)]
#[error(
    "{name} {path} already exists and is not {what} (its first line is {first_line:?}), so it \
     would be replaced. Nothing was written; pass another path for {name} or move that file away"
)]
pub struct ForeignFile {
    pub name: &'static str,
    pub path: PathBuf,
    pub what: &'static str,
    pub first_line: String,
}

/// Refuses to replace an existing, non-empty file unless its header ends with the columns of
/// `header`: a file this tool wrote before (whatever delimiter a spreadsheet saved it with).
/// It catches the slip no path comparison can, such as `status --out users.csv`: the input of
/// another command, or any file the operator did not mean.
pub fn check_ours_or_absent(
    name: &'static str,
    path: &Path,
    what: &'static str,
    header: &[&str],
) -> Result<(), ForeignFile> {
    use std::io::{BufRead, Read};
    let Ok(file) = std::fs::File::open(path) else {
        // Absent, or unreadable: the write itself will then say what is wrong.
        return Ok(());
    };
    let mut first_line = Vec::new();
    let read = std::io::BufReader::new(file.take(64 * 1024)).read_until(b'\n', &mut first_line);
    if read.is_err() || first_line.is_empty() {
        return Ok(());
    }
    let first_line = String::from_utf8_lossy(&first_line);
    let first_line = first_line.trim_start_matches('\u{feff}').trim();
    let cells: Vec<String> = first_line
        .split([',', ';', '\t', '|'])
        .map(|cell| cell.trim().trim_matches('"').trim().to_ascii_lowercase())
        .collect();
    // Our files end with these columns in this order: an error file with `line,error` after
    // the input's own columns, so a results file (which has both, elsewhere) is not one.
    if cells.len() >= header.len()
        && cells[cells.len() - header.len()..]
            .iter()
            .zip(header)
            .all(|(cell, column)| cell == column)
    {
        return Ok(());
    }
    let mut shown: String = first_line.chars().take(80).collect();
    if shown.len() < first_line.len() {
        shown.push('…');
    }
    Err(ForeignFile {
        name,
        path: path.to_path_buf(),
        what,
        first_line: shown,
    })
}

/// What a path points at, as far as can be told before writing.
#[derive(Debug)]
struct Identity {
    canonical: PathBuf,
    /// Device and inode of an existing file.
    inode: Option<(u64, u64)>,
}

impl Identity {
    fn of(path: &Path) -> Option<Identity> {
        if path.as_os_str() == "-" {
            return None;
        }
        Some(Identity {
            canonical: resolve(path),
            inode: inode(path),
        })
    }

    fn same_file(&self, other: &Identity) -> bool {
        self.canonical == other.canonical
            || matches!((self.inode, other.inode), (Some(a), Some(b)) if a == b)
    }
}

/// The file `path` finally names: symlinks followed (also a dangling last link, which a write
/// would create), the folder canonicalised when the file does not exist yet. Writers replace
/// this path, so a symlinked results file keeps its link and the target gets the new content.
pub fn resolve(path: &Path) -> PathBuf {
    if let Ok(canonical) = std::fs::canonicalize(path) {
        return canonical;
    }
    // A dangling symlink: follow it (a bounded number of hops) to the file a write creates.
    let mut current = path.to_path_buf();
    for _ in 0..40 {
        match std::fs::read_link(&current) {
            Ok(target) => {
                current = match current.parent() {
                    Some(parent) if target.is_relative() => parent.join(target),
                    _ => target,
                }
            }
            Err(_) => break,
        }
    }
    let absolute = std::path::absolute(&current).unwrap_or(current);
    match (absolute.parent(), absolute.file_name()) {
        (Some(parent), Some(name)) => std::fs::canonicalize(parent)
            .map(|parent| parent.join(name))
            .unwrap_or(absolute),
        _ => absolute,
    }
}

#[cfg(unix)]
fn inode(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let metadata = std::fs::metadata(path).ok()?;
    Some((metadata.dev(), metadata.ino()))
}

#[cfg(not(unix))]
fn inode(_path: &Path) -> Option<(u64, u64)> {
    None
}

/// The file beside `path` named after its stem: `beside("a/users.csv", "results.csv")` is
/// `a/users.results.csv`. The default places of the results, dry-run and status files.
pub fn beside(path: &std::path::Path, suffix: &str) -> PathBuf {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!("{stem}.{suffix}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_files_pass_and_reads_may_share_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("users.csv");
        std::fs::write(&input, "email\n").unwrap();
        let results = dir.path().join("users.results.csv");
        check_distinct(&[
            PathUse::read("the input", &input),
            PathUse::read("--api-key-file", &input),
            PathUse::write("--results", &results),
        ])
        .unwrap();
    }

    #[test]
    fn a_write_onto_a_read_is_refused_by_either_spelling() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("users.csv");
        std::fs::write(&input, "email\n").unwrap();
        let dotted = dir.path().join(".").join("users.csv");
        let clash = check_distinct(&[
            PathUse::read("the input", &input),
            PathUse::write("--errors", &dotted),
        ])
        .unwrap_err();
        assert!(
            matches!(
                clash,
                PathClash::SameFile {
                    writer: "--errors",
                    other: "the input",
                    ..
                }
            ),
            "{clash:?}"
        );
        assert!(clash.to_string().contains("--errors and the input"));
    }

    #[test]
    fn two_writes_onto_one_new_file_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("new.csv");
        let b = dir.path().join("sub/../new.csv");
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let clash = check_distinct(&[
            PathUse::write("--results", &a),
            PathUse::write("--errors", &b),
        ])
        .unwrap_err();
        assert!(
            matches!(
                clash,
                PathClash::SameFile {
                    writer: "--errors",
                    other: "--results",
                    ..
                }
            ),
            "{clash:?}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn hard_links_and_symlinks_are_the_same_file() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("users.csv");
        std::fs::write(&input, "email\n").unwrap();
        let hard = dir.path().join("hard.csv");
        std::fs::hard_link(&input, &hard).unwrap();
        let soft = dir.path().join("soft.csv");
        std::os::unix::fs::symlink(&input, &soft).unwrap();
        for alias in [&hard, &soft] {
            assert!(
                check_distinct(&[
                    PathUse::read("the input", &input),
                    PathUse::write("--out", alias)
                ])
                .is_err()
            );
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_dangling_symlink_resolves_to_the_file_a_write_would_create() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("link.csv");
        std::os::unix::fs::symlink("target.csv", &link).unwrap();
        assert_eq!(
            resolve(&link),
            std::fs::canonicalize(dir.path())
                .unwrap()
                .join("target.csv")
        );
    }

    #[test]
    fn only_absent_empty_or_own_files_may_be_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.csv");
        let status_header = ["external_uuid", "provision_id", "status"];
        check_ours_or_absent("--out", &path, "a status file", &status_header).unwrap();
        std::fs::write(&path, "").unwrap();
        check_ours_or_absent("--out", &path, "a status file", &status_header).unwrap();
        std::fs::write(
            &path,
            "\u{feff}\"External_UUID\";provision_id;status\r\nx;1;y\r\n",
        )
        .unwrap();
        check_ours_or_absent("--out", &path, "a status file", &status_header).unwrap();
        std::fs::write(&path, "email,name\njan@example.com,Jan\n").unwrap();
        let foreign =
            check_ours_or_absent("--out", &path, "a status file", &status_header).unwrap_err();
        assert!(
            foreign
                .to_string()
                .contains("is not a status file (its first line is \"email,name\")"),
            "{foreign}"
        );
    }

    #[test]
    fn a_file_to_write_in_a_missing_folder_is_refused_up_front() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("no-such-folder/results.csv");
        let refused = check_distinct(&[PathUse::write("--results", &missing)]).unwrap_err();
        assert!(matches!(
            refused,
            PathClash::NoFolder {
                name: "--results",
                ..
            }
        ));
        check_distinct(&[PathUse::write("--results", Path::new("relative.csv"))]).unwrap();
    }

    #[test]
    fn standard_input_names_no_file_and_is_no_output() {
        let dash = Path::new("-");
        check_distinct(&[PathUse::read("the input", dash)]).unwrap();
        let refused = check_distinct(&[
            PathUse::read("the input", dash),
            PathUse::write("--out", dash),
        ])
        .unwrap_err();
        assert!(
            matches!(refused, PathClash::Dash { name: "--out" }),
            "{refused:?}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn devices_and_folders_are_never_outputs() {
        let dir = tempfile::tempdir().unwrap();
        for output in [Path::new("/dev/null"), dir.path()] {
            let refused = check_distinct(&[PathUse::write("--results", output)]).unwrap_err();
            assert!(matches!(refused, PathClash::NotAFile { .. }), "{refused:?}");
        }
    }

    #[test]
    fn a_results_file_is_not_an_error_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("precious.results.csv");
        let results_header = "line,external_uuid,pointer_type,pointer_value,status,provision_id,\
                              error,attempts,updated_at\n";
        std::fs::write(&path, results_header).unwrap();
        let error_columns = ["line", "error"];
        assert!(check_ours_or_absent("--errors", &path, "an error file", &error_columns).is_err());
        std::fs::write(&path, "email,name,line,error\n").unwrap();
        check_ours_or_absent("--errors", &path, "an error file", &error_columns).unwrap();
    }

    #[test]
    fn default_files_sit_beside_their_source() {
        assert_eq!(
            beside(Path::new("a/users.csv"), "results.csv"),
            PathBuf::from("a/users.results.csv")
        );
        assert_eq!(
            beside(Path::new("users.results.csv"), "dry-run.csv"),
            PathBuf::from("users.results.dry-run.csv")
        );
    }
}
