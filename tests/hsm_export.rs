//! The CA key `gitca init --pkcs11-generate` makes cannot be exported: asked through PKCS#11
//! itself (cryptoki, against the real SoftHSM2), the token withholds CKA_VALUE and says the key
//! is sensitive and never extractable. Its own test binary: SoftHSM reads SOFTHSM2_CONF from
//! this process's environment, which is set once, before any other thread runs.

mod common;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::object::{Attribute, AttributeType, ObjectClass};
use cryptoki::session::UserType;
use cryptoki::types::AuthPin;

use common::hsm::{Token, MODULE, PIN};
use common::*;

#[test]
fn the_ca_key_generated_in_the_token_cannot_be_exported() {
    let token = Token::new();
    let tmp = tempfile::tempdir().unwrap();
    let mut c = gitca();
    token
        .env(&mut c)
        .args(["--now", T0, "init", "-C"])
        .arg(tmp.path().join("ca"));
    c.args([
        "--name",
        "HSM CA",
        "--pkcs11",
        "pkcs11:token=gitca-test;object=ca",
    ]);
    ok(run(c.args(["--pkcs11-generate", "-q"])));

    std::env::set_var("SOFTHSM2_CONF", &token.conf);
    let ctx = Pkcs11::new(MODULE).unwrap();
    ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .unwrap();
    let slot = ctx.get_slots_with_initialized_token().unwrap()[0];
    let session = ctx.open_ro_session(slot).unwrap();
    session
        .login(UserType::User, Some(&AuthPin::new(PIN.into())))
        .unwrap();
    let keys = session
        .find_objects(&[
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::Label(b"ca".to_vec()),
        ])
        .unwrap();
    assert_eq!(keys.len(), 1, "the token holds the CA key");
    let attrs = session
        .get_attributes(
            keys[0],
            &[
                AttributeType::Value,
                AttributeType::Sensitive,
                AttributeType::Extractable,
                AttributeType::NeverExtractable,
                AttributeType::Sign,
            ],
        )
        .unwrap();
    // CKA_VALUE is refused (CKR_ATTRIBUTE_SENSITIVE): cryptoki leaves it out of the answer.
    assert!(
        !attrs.iter().any(|a| matches!(a, Attribute::Value(_))),
        "the private value was returned"
    );
    for want in [
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::NeverExtractable(true),
        Attribute::Sign(true),
    ] {
        assert!(attrs.contains(&want), "{want:?} missing from {attrs:?}");
    }
    // And the public half is readable, which shows the query itself works.
    let public = session
        .find_objects(&[
            Attribute::Class(ObjectClass::PUBLIC_KEY),
            Attribute::Label(b"ca".to_vec()),
        ])
        .unwrap();
    let point = session
        .get_attributes(public[0], &[AttributeType::EcPoint])
        .unwrap();
    assert!(matches!(&point[..], [Attribute::EcPoint(p)] if p.len() == 67));
}
