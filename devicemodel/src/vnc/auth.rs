//! VNC Authentication (RFC 6143 7.2.2): DES-ECB of a 16-byte challenge under a key made of the
//! password's first 8 bytes, zero-padded, each byte bit-reversed (the historical quirk every
//! implementation shares; QEMU ui/vnc.c vnc_munge_des_rfb_key). DES is RustCrypto's `des`.

use des::cipher::{BlockEncrypt, KeyInit};
use des::Des;

use super::spec::CHALLENGE_LEN;

/// The key VNC Authentication derives from a password.
pub fn password_key(password: &[u8]) -> [u8; 8] {
    let mut key = [0u8; 8];
    for (k, p) in key.iter_mut().zip(password) {
        *k = p.reverse_bits();
    }
    key
}

/// The response a client with `password` gives to `challenge`.
pub fn response(password: &[u8], challenge: &[u8; CHALLENGE_LEN]) -> [u8; CHALLENGE_LEN] {
    let cipher = Des::new(&password_key(password).into());
    let mut out = *challenge;
    for block in out.chunks_exact_mut(8) {
        cipher.encrypt_block(block.into());
    }
    out
}

/// Whether `answer` is right (compared in constant time).
pub fn check(password: &[u8], challenge: &[u8; CHALLENGE_LEN], answer: &[u8; CHALLENGE_LEN]) -> bool {
    let expected = response(password, challenge);
    expected.iter().zip(answer).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

/// A fresh random challenge (the kernel's CSPRNG).
pub fn challenge() -> std::io::Result<[u8; CHALLENGE_LEN]> {
    let mut c = [0u8; CHALLENGE_LEN];
    let mut filled = 0;
    while filled < c.len() {
        let n = rustix::rand::getrandom(&mut c[filled..], rustix::rand::GetRandomFlags::empty())?;
        filled += n;
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vector() {
        // Computed independently with OpenSSL: the key is "password" bit-reversed, 0e86ceceeef64e26,
        // `printf "\\x00\\x01...\\x0f" | openssl enc -des-ecb -K 0e86ceceeef64e26 -nopad -provider legacy`.
        assert_eq!(password_key(b"password"), [0x0e, 0x86, 0xce, 0xce, 0xee, 0xf6, 0x4e, 0x26]);
        assert_eq!(password_key(b"ab"), [0x86, 0x46, 0, 0, 0, 0, 0, 0]);
        let challenge: [u8; 16] = core::array::from_fn(|i| i as u8);
        let r = response(b"password", &challenge);
        assert_eq!(hex(&r), KNOWN_PASSWORD_RESPONSE);
        assert!(check(b"password", &challenge, &r));
        assert!(!check(b"passwore", &challenge, &r));
        // Only 8 bytes count.
        assert!(check(b"password-and-more", &challenge, &r));
    }

    const KNOWN_PASSWORD_RESPONSE: &str = "b866924125c8eebb9debc1db61c538e2";

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }
}
