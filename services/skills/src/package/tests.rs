use super::*;

fn temp() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "clawdbot-pkg-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let _removed = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    dir
}

const MANIFEST: &str = "name: weather\nversion: 1.2.0\ndescription: \"/weather <city>\"\nremote: \"http://127.0.0.1:50051\"\ncommands: [\"/weather\"]\n";

#[test]
fn a_built_archive_loads_back_and_an_altered_one_does_not() {
    let dir = temp();
    std::fs::write(dir.join(MANIFEST_FILE), MANIFEST).expect("manifest");
    std::fs::create_dir_all(dir.join("data")).expect("data dir");
    std::fs::write(dir.join("data/cities.txt"), "Hangzhou\nBeijing\n").expect("file");
    let output = dir.join("weather.skill");
    let (manifest, checksum) = build(&dir, &output, None).expect("built");
    assert_eq!(manifest.name, "weather");
    assert_eq!(checksum.len(), 64);
    let loaded = load(&output).expect("loads");
    assert_eq!(loaded.manifest, manifest);
    assert_eq!(loaded.registered.signature, None);
    assert_eq!(
        loaded.registered.verify(None, &[], true).expect("verifies"),
        manifest
    );

    // Flip one byte of the packed file's content: the checksum catches it.
    let mut bytes = std::fs::read(&output).expect("archive");
    let at = bytes
        .windows(8)
        .position(|w| w == b"Hangzhou")
        .expect("content in the archive");
    bytes[at] = b'h';
    std::fs::write(&output, &bytes).expect("write");
    let error = load(&output).expect_err("altered");
    assert!(
        error.contains("checksum mismatch for `data/cities.txt`"),
        "{error}"
    );
    let _removed = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_bare_manifest_loads_and_bad_ones_say_why() {
    let dir = temp();
    let path = dir.join(MANIFEST_FILE);
    std::fs::write(&path, MANIFEST).expect("manifest");
    assert_eq!(load(&path).expect("loads").manifest.version, "1.2.0");
    std::fs::write(&path, "name: Weather!\nversion: \"\"\n").expect("manifest");
    let error = load(&path).expect_err("invalid");
    assert!(
        error.contains("`skill.yaml: name`")
            && error.contains("`skill.yaml: version`")
            && error.contains("`skill.yaml: remote` is missing"),
        "{error}"
    );
    let error =
        build(&temp().join("nowhere"), &dir.join("x.skill"), None).expect_err("no manifest");
    assert!(error.contains("cannot read"), "{error}");
    let _removed = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_signed_archive_verifies_and_an_altered_registration_does_not() {
    let dir = temp();
    std::fs::write(dir.join(MANIFEST_FILE), MANIFEST).expect("manifest");
    let (private, public) = sign::keygen();
    let key = sign::signing_key(&private, "test").expect("key");
    let output = dir.join("weather.skill");
    build(&dir, &output, Some(&key)).expect("built");
    let loaded = load(&output).expect("loads");
    let registered = loaded.registered.clone();
    assert_eq!(
        registered.signature.as_ref().map(|s| s.public_key.as_str()),
        Some(public.as_str())
    );
    assert!(
        registered
            .verify(None, std::slice::from_ref(&public), false)
            .is_ok()
    );
    let untrusted = registered.verify(None, &[], false).expect_err("untrusted");
    assert!(
        untrusted.contains("not in `worker.wasm.trusted_keys`"),
        "{untrusted}"
    );

    // Someone with write access to the store widens the manifest: the checksum catches it.
    let mut widened = registered.clone();
    widened
        .manifest_yaml
        .push_str("capabilities: {http_hosts: [\"evil.example\"]}\n");
    let error = widened
        .verify(None, std::slice::from_ref(&public), false)
        .expect_err("altered");
    assert!(error.contains("does not match its checksum"), "{error}");
    // ... and rewriting the checksums breaks the signature.
    let mut resummed = widened.clone();
    resummed.sums = format!(
        "{}  {MANIFEST_FILE}\n",
        hex::encode(Sha256::digest(resummed.manifest_yaml.as_bytes()))
    );
    let error = resummed
        .verify(None, &[public], false)
        .expect_err("altered");
    assert!(error.contains("altered after signing"), "{error}");
    let _removed = std::fs::remove_dir_all(&dir);
}
