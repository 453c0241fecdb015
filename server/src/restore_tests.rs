//! The checks a restore makes before it writes anything.

use sha2::{Digest, Sha256};

use super::*;

fn options(dir: &Path) -> RestoreOptions {
    RestoreOptions {
        data_dir: dir.to_path_buf(),
        name: "m1".into(),
        initial_cluster: "m1=http://127.0.0.1:2380,m2=http://127.0.0.1:2381".into(),
        initial_cluster_token: "restored".into(),
        initial_advertise_peer_urls: vec!["http://127.0.0.1:2380".into()],
    }
}

/// A file framed like a snapshot: `data` then its sha256.
fn framed(path: &Path, data: &[u8]) {
    let mut bytes = data.to_vec();
    bytes.extend_from_slice(&Sha256::digest(data));
    std::fs::write(path, bytes).unwrap();
}

#[tokio::test]
async fn damaged_and_foreign_files_are_refused_and_leave_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("new.data");

    let short = dir.path().join("short");
    std::fs::write(&short, b"tiny").unwrap();
    let err = restore_snapshot(&short, &options(&data_dir))
        .await
        .unwrap_err();
    assert!(matches!(err, RestoreError::TooShort(_)), "{err}");

    let damaged = dir.path().join("damaged");
    framed(&damaged, &[7u8; 4096]);
    let mut bytes = std::fs::read(&damaged).unwrap();
    bytes[10] ^= 1;
    std::fs::write(&damaged, bytes).unwrap();
    let err = restore_snapshot(&damaged, &options(&data_dir))
        .await
        .unwrap_err();
    assert!(matches!(err, RestoreError::BadChecksum(_)), "{err}");

    let foreign = dir.path().join("foreign");
    framed(&foreign, &[7u8; 4096]);
    let err = restore_snapshot(&foreign, &options(&data_dir))
        .await
        .unwrap_err();
    assert!(
        matches!(err, RestoreError::NotWitanSnapshot { .. }),
        "{err}"
    );
    let err = snapshot_status(&foreign).await.unwrap_err();
    assert!(
        matches!(err, RestoreError::NotWitanSnapshot { .. }),
        "{err}"
    );

    assert!(!data_dir.exists(), "a failed restore leaves no data dir");
}

#[tokio::test]
async fn options_and_data_dir_are_checked_first() {
    let dir = tempfile::tempdir().unwrap();
    let snapshot = dir.path().join("s");
    framed(&snapshot, &[7u8; 4096]);

    let busy = dir.path().join("busy");
    std::fs::create_dir(&busy).unwrap();
    std::fs::write(busy.join("state.db"), b"x").unwrap();
    let err = restore_snapshot(&snapshot, &options(&busy))
        .await
        .unwrap_err();
    assert!(matches!(err, RestoreError::DataDirNotEmpty(_)), "{err}");
    assert!(
        busy.join("state.db").exists(),
        "an existing dir is not touched"
    );

    let mut wrong = options(&dir.path().join("a"));
    wrong.name = "m9".into();
    let err = restore_snapshot(&snapshot, &wrong).await.unwrap_err();
    assert!(matches!(err, RestoreError::Options(_)), "{err}");

    let mut wrong = options(&dir.path().join("b"));
    wrong.initial_advertise_peer_urls = vec!["http://127.0.0.1:2381".into()];
    let err = restore_snapshot(&snapshot, &wrong).await.unwrap_err();
    assert!(
        matches!(err, RestoreError::PeerUrlsMismatch { .. }),
        "{err}"
    );
}
