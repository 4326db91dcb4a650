//! The ECS `user` field (`name`, `uid`, `name:group`, `uid:gid`, ...)
//! resolved against the image's `/etc/passwd` and `/etc/group`, the way
//! Docker and runc do it.

use crate::spec::User;
use std::io::Read;
use std::path::Path;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserError {
    #[error("unable to find user {0}: no matching entries in passwd file")]
    UnknownUser(String),
    #[error("unable to find group {0}: no matching entries in group file")]
    UnknownGroup(String),
    #[error("invalid user {0:?}")]
    Invalid(String),
}

struct PasswdEntry<'a> {
    name: &'a str,
    uid: u32,
    gid: u32,
    home: &'a str,
}

fn passwd_entries(passwd: &str) -> impl Iterator<Item = PasswdEntry<'_>> {
    passwd
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() < 4 {
                return None;
            }
            Some(PasswdEntry {
                name: f[0],
                uid: f[2].trim().parse().ok()?,
                gid: f[3].trim().parse().ok()?,
                home: f.get(5).copied().unwrap_or(""),
            })
        })
}

struct GroupEntry<'a> {
    name: &'a str,
    gid: u32,
    members: Vec<&'a str>,
}

fn group_entries(group: &str) -> impl Iterator<Item = GroupEntry<'_>> {
    group
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() < 3 {
                return None;
            }
            let members = f
                .get(3)
                .map(|m| {
                    m.split(',')
                        .map(str::trim)
                        .filter(|m| !m.is_empty())
                        .collect()
                })
                .unwrap_or_default();
            Some(GroupEntry {
                name: f[0],
                gid: f[2].trim().parse().ok()?,
                members,
            })
        })
}

/// Resolve `spec` (empty or `None` means root) given the text of the image's
/// passwd and group files (empty when the image has none).
pub fn resolve(spec: Option<&str>, passwd: &str, group: &str) -> Result<User, UserError> {
    let spec = spec.map(str::trim).unwrap_or("");
    let (user_part, group_part) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    if user_part.contains(':') || group_part.is_some_and(|g| g.contains(':')) {
        return Err(UserError::Invalid(spec.to_string()));
    }
    let user_part = if user_part.is_empty() { "0" } else { user_part };

    let (uid, mut gid, home, name) = if let Ok(uid) = user_part.parse::<u32>() {
        match passwd_entries(passwd).find(|e| e.uid == uid) {
            Some(e) => (
                uid,
                e.gid,
                Some(e.home.to_string()),
                Some(e.name.to_string()),
            ),
            None => (uid, 0, None, None),
        }
    } else {
        match passwd_entries(passwd).find(|e| e.name == user_part) {
            Some(e) => (
                e.uid,
                e.gid,
                Some(e.home.to_string()),
                Some(e.name.to_string()),
            ),
            None => return Err(UserError::UnknownUser(user_part.to_string())),
        }
    };
    if let Some(g) = group_part.filter(|g| !g.is_empty()) {
        gid = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => match group_entries(group).find(|e| e.name == g) {
                Some(e) => e.gid,
                None => return Err(UserError::UnknownGroup(g.to_string())),
            },
        };
    }
    let mut additional_gids = Vec::new();
    if let Some(name) = &name {
        for e in group_entries(group) {
            if e.members.contains(&name.as_str())
                && e.gid != gid
                && !additional_gids.contains(&e.gid)
            {
                additional_gids.push(e.gid);
            }
        }
    }
    let home = home
        .filter(|h| !h.is_empty())
        .or_else(|| (uid == 0).then(|| "/root".to_string()));
    Ok(User {
        uid,
        gid,
        additional_gids,
        home,
    })
}

/// Read `rootfs/etc/<name>` without following a symlink planted by the image
/// (which would read the host's file); missing or unsafe files read as empty.
fn read_image_file(rootfs: &Path, name: &str) -> String {
    use std::os::unix::fs::OpenOptionsExt;
    let etc = rootfs.join("etc");
    match std::fs::symlink_metadata(&etc) {
        Ok(m) if m.is_dir() => {}
        _ => return String::new(),
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(etc.join(name));
    let mut text = String::new();
    if let Ok(mut f) = file {
        // A passwd file larger than this is not one an image should have.
        let _ = f.by_ref().take(4 << 20).read_to_string(&mut text);
    }
    text
}

/// [`resolve`] against the files of an image's root filesystem.
pub fn resolve_in_rootfs(spec: Option<&str>, rootfs: &Path) -> Result<User, UserError> {
    resolve(
        spec,
        &read_image_file(rootfs, "passwd"),
        &read_image_file(rootfs, "group"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
                          daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n\
                          # comment\n\
                          app:x:1000:1000:App:/home/app:/bin/sh\n";
    const GROUP: &str = "root:x:0:\nwheel:x:10:root,app\napp:x:1000:\nstaff:x:50:app\n";

    #[test]
    fn empty_means_root() {
        let u = resolve(None, PASSWD, GROUP).unwrap();
        assert_eq!(
            u,
            User {
                uid: 0,
                gid: 0,
                additional_gids: vec![10],
                home: Some("/root".into())
            }
        );
        assert_eq!(resolve(Some(""), "", "").unwrap(), User::root());
    }

    #[test]
    fn by_name_with_supplementary_groups() {
        let u = resolve(Some("app"), PASSWD, GROUP).unwrap();
        assert_eq!(
            u,
            User {
                uid: 1000,
                gid: 1000,
                additional_gids: vec![10, 50],
                home: Some("/home/app".into())
            }
        );
    }

    #[test]
    fn numeric_forms() {
        let u = resolve(Some("1000"), PASSWD, GROUP).unwrap();
        assert_eq!((u.uid, u.gid), (1000, 1000));
        let u = resolve(Some("4242"), PASSWD, GROUP).unwrap();
        assert_eq!(
            u,
            User {
                uid: 4242,
                gid: 0,
                additional_gids: vec![],
                home: None
            }
        );
        let u = resolve(Some("4242:77"), PASSWD, GROUP).unwrap();
        assert_eq!((u.uid, u.gid), (4242, 77));
        let u = resolve(Some("app:staff"), PASSWD, GROUP).unwrap();
        assert_eq!((u.uid, u.gid, u.additional_gids), (1000, 50, vec![10]));
    }

    #[test]
    fn unknown_names_are_errors() {
        assert_eq!(
            resolve(Some("nobody"), PASSWD, GROUP),
            Err(UserError::UnknownUser("nobody".into()))
        );
        assert_eq!(
            resolve(Some("app:nogroup"), PASSWD, GROUP),
            Err(UserError::UnknownGroup("nogroup".into()))
        );
        assert!(matches!(
            resolve(Some("a:b:c"), PASSWD, GROUP),
            Err(UserError::Invalid(_))
        ));
    }

    #[test]
    fn rootfs_symlinks_are_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        std::fs::write(dir.path().join("secret"), "evil:x:7:7::/:/bin/sh\n").unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret"), dir.path().join("etc/passwd"))
            .unwrap();
        assert_eq!(
            resolve_in_rootfs(Some("evil"), dir.path()),
            Err(UserError::UnknownUser("evil".into()))
        );
        std::fs::remove_file(dir.path().join("etc/passwd")).unwrap();
        std::fs::write(dir.path().join("etc/passwd"), PASSWD).unwrap();
        assert_eq!(
            resolve_in_rootfs(Some("app"), dir.path()).unwrap().uid,
            1000
        );
    }
}
