//! The canonical encoding of commands (`Command::canonical_bytes`, version 2) is a stored
//! format: request records keep a digest of it for ever, and a retry is recognised only if it
//! gives the same bytes. These golden digests, one per command kind, must never change; a test
//! that fails here means a change of the format, which needs a new version (and a thought for
//! the request records already written).

use chrono::NaiveDate;
use ledger_domain::command::{
    AdjustBudget, ApproveModule, ApproveProvider, CancelUsageCode, ExpireVouchers, IssueVouchers,
    OpenBudget, OrderUsageCode, RecordPayout, RedeemHours, RegisterCompany, ReverseRedemption,
    WithdrawModule, WithdrawProvider, CANONICAL_ENCODING_TAG,
};
use ledger_domain::{
    Command, EnterpriseNumber, Identifier, LegalForm, Region, Theme, TraineeStatus, UsageCode,
    VoucherType, WorkerPseudonym,
};
use rust_decimal_macros::dec;
use sha2::{Digest, Sha256};
use uuid::Uuid;

fn day(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("a test date")
}

fn id(text: &str) -> Identifier {
    Identifier::parse(text).expect("a test identifier")
}

fn company() -> EnterpriseNumber {
    EnterpriseNumber::parse("0403.019.261").expect("a valid enterprise number")
}

fn uuid(text: &str) -> Uuid {
    Uuid::parse_str(text).expect("a test uuid")
}

/// One command of each kind, with every optional part present somewhere.
fn one_of_each_kind() -> Vec<Command> {
    vec![
        Command::OpenBudget(OpenBudget {
            year: 2025,
            allocated_eur: dec!(7657000.00),
        }),
        Command::AdjustBudget(AdjustBudget {
            year: 2025,
            allocated_eur: dec!(7700000.00),
            reason: "regional budget revised".to_owned(),
        }),
        Command::ApproveProvider(ApproveProvider {
            provider_id: id("AG-0012"),
            name: "Formations Meuse".to_owned(),
            approved_from: day("2025-01-01"),
            approved_until: Some(day("2027-12-31")),
        }),
        Command::WithdrawProvider(WithdrawProvider {
            provider_id: id("AG-0012"),
            withdrawn_from: day("2025-09-01"),
            reason: "approval conditions no longer met".to_owned(),
        }),
        Command::ApproveModule(ApproveModule {
            module_id: id("M-1"),
            provider_id: id("AG-0012"),
            title: "AI for small businesses".to_owned(),
            hours_max: 40,
            accepted_voucher_types: vec![VoucherType::General, VoucherType::Languages],
            themes: vec![Theme::Ai, Theme::Digital],
            approved_from: day("2025-01-01"),
            approved_until: None,
        }),
        Command::WithdrawModule(WithdrawModule {
            module_id: id("M-1"),
            withdrawn_from: day("2025-10-01"),
            reason: "module no longer offered".to_owned(),
        }),
        Command::RegisterCompany(RegisterCompany {
            enterprise_number: company(),
            year: 2025,
            name: "Meuse Numérique SRL".to_owned(),
            legal_form: LegalForm::CommercialCompany,
            region: Region::WalloniaFrenchSpeaking,
            fte: dec!(12.5),
            turnover_eur: dec!(1000000.00),
            balance_sheet_total_eur: dec!(500000.00),
            autonomous: true,
            secondary_activity_months: 0,
            nace_sector: "62.01".to_owned(),
            registered_on: day("2025-01-05"),
        }),
        Command::IssueVouchers(IssueVouchers {
            batch_id: uuid("2ca47b68-88ee-4e57-aec5-f69db997c58a"),
            enterprise_number: company(),
            voucher_type: VoucherType::General,
            quantity: 10,
            paid_amount_eur: dec!(150.00),
            payment_date: day("2025-03-10"),
            payment_reference: "VIR-2025-0001".to_owned(),
        }),
        Command::RedeemHours(RedeemHours {
            redemption_id: uuid("3f0c2a9e-5b1d-4e8f-9a6c-7d2e1b0f4c11"),
            provider_id: id("AG-0012"),
            module_id: id("M-1"),
            enterprise_number: company(),
            worker: WorkerPseudonym::from_bytes([0xab; 32]),
            trainee_status: TraineeStatus::Employee,
            voucher_type: VoucherType::General,
            hours: 3,
            training_date: day("2025-06-01"),
            usage_code: None,
        }),
        Command::ReverseRedemption(ReverseRedemption {
            redemption_id: uuid("3f0c2a9e-5b1d-4e8f-9a6c-7d2e1b0f4c11"),
            provider_id: id("AG-0012"),
            reason: "training cancelled".to_owned(),
            reversed_on: day("2025-06-20"),
        }),
        Command::ExpireVouchers(ExpireVouchers {
            as_of: day("2026-03-01"),
        }),
        Command::RecordPayout(RecordPayout {
            provider_id: id("AG-0012"),
            amount_eur: dec!(90.00),
            payout_date: day("2025-07-01"),
            payout_reference: "PAY-2025-0001".to_owned(),
        }),
        // The usage-code commands (issue 15), in the same version 2 of the format.
        Command::OrderUsageCode(OrderUsageCode {
            order_id: uuid("9b2f4c1e-7a3d-4f60-8e15-c2d94a7b3e08"),
            enterprise_number: company(),
            provider_id: id("AG-0012"),
            module_id: Some(id("M-1")),
            voucher_type: VoucherType::General,
            hours: 8,
            period_from: day("2025-09-01"),
            period_until: day("2025-09-30"),
        }),
        Command::CancelUsageCode(CancelUsageCode {
            code: usage_code(),
            enterprise_number: company(),
            reason: "training postponed".to_owned(),
        }),
        Command::RedeemHours(RedeemHours {
            redemption_id: uuid("5d7e9f10-2a3b-4c5d-8e6f-708192a3b4c5"),
            provider_id: id("AG-0012"),
            module_id: id("M-1"),
            enterprise_number: company(),
            worker: WorkerPseudonym::from_bytes([0xab; 32]),
            trainee_status: TraineeStatus::Employee,
            voucher_type: VoucherType::General,
            hours: 3,
            training_date: day("2025-09-10"),
            usage_code: Some(usage_code()),
        }),
    ]
}

/// A code of the order above (its first derivation), as a company writes it.
fn usage_code() -> UsageCode {
    UsageCode::derive(uuid("9b2f4c1e-7a3d-4f60-8e15-c2d94a7b3e08"), 0)
}

/// SHA-256 of each command's canonical bytes, version 2. Never edit a line: a new format is a
/// new version with goldens of its own. The first and the `expire_vouchers` ones were also
/// recomputed by hand from the format's description (Python's hashlib and struct).
const GOLDEN_DIGESTS: [(&str, &str); 15] = [
    (
        "open_budget",
        "37cf313cff47c1d76453b6fea83c182acc3e04b66c296295372b4a3d0c899565",
    ),
    (
        "adjust_budget",
        "39c495499154e485edfa919406486b4e77287295091c9ee2a0cc66bdba88d094",
    ),
    (
        "approve_provider",
        "e37114b1f84d56d9f5f5ffaa400a6eb440a187fd23844a7c57a78e597e7900e2",
    ),
    (
        "withdraw_provider",
        "68871c59012acf440579dc69025c375b186f96746c8fc6947128e53053a0c77d",
    ),
    (
        "approve_module",
        "882fe3b035319ceb7865785a2eb0db0b2b281d7344f0631e6cdfd964eaabc069",
    ),
    (
        "withdraw_module",
        "d973b3e87cc8fec81b042bc1851a803e6aa1e82ebb9dcc39cfa8ea9c47953b05",
    ),
    (
        "register_company",
        "e6bd06eb2b1474323ca17d41d5179c6863cfdf785ada4153388d457244ec6acc",
    ),
    (
        "issue_vouchers",
        "dad8a296fe87b6ff3c679fd6e6f5f470b4ff02547183427e0d8b31c25a33298e",
    ),
    (
        "redeem_hours",
        "7e4f9d21d56b080527c9c8251757bc08af87197d599f504b407cc6c8e1ec6a7a",
    ),
    (
        "reverse_redemption",
        "bf3b643f72dcc0018d46089b838d8d2b9b664aaa1eb5f7f08b7d7c8be86743a7",
    ),
    (
        "expire_vouchers",
        "6ee789f46489d6cef66b0cb4d5e9464ebc8c135390d88f0e433fadce6f1d9440",
    ),
    (
        "record_payout",
        "d3ea27c7cbac8c6ab8e4233ace747ab5d62f9187d1470437e327d6b5ee2a6c37",
    ),
    (
        "order_usage_code",
        "e7b2de0541942c229a11959c9115ac5977a35c1030ce05fd542f7360d6fbbc93",
    ),
    (
        "cancel_usage_code",
        "47d6102be8099ac3e53cdc2ba23c2331687978e5554d5d6d4fe3b6d0c518b56c",
    ),
    // A filing against a code: the redemption's bytes with the code (issue 15).
    (
        "redeem_hours",
        "7c56fc0b7cc275221e7c5cc0be70e07b770db76d303717968317deae3ec502fb",
    ),
];

#[test]
fn every_command_kind_has_its_golden_digest() {
    let commands = one_of_each_kind();
    assert_eq!(commands.len(), GOLDEN_DIGESTS.len());
    let mut found = Vec::new();
    let mut changed = Vec::new();
    for (command, (kind, golden)) in commands.iter().zip(GOLDEN_DIGESTS) {
        assert_eq!(command.action(), kind);
        let digest = hex::encode(Sha256::digest(command.canonical_bytes()));
        found.push(format!("    (\"{kind}\", \"{digest}\"),"));
        if digest != golden {
            changed.push(kind);
        }
    }
    assert!(
        changed.is_empty(),
        "the canonical bytes of {changed:?} changed; the digests now:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_bytes_begin_with_the_format_version_and_name_the_kind() {
    for command in one_of_each_kind() {
        let bytes = command.canonical_bytes();
        assert!(bytes.starts_with(CANONICAL_ENCODING_TAG));
        let kind = command.action().as_bytes();
        let after_tag = &bytes[CANONICAL_ENCODING_TAG.len()..];
        assert_eq!(&after_tag[..8], &(kind.len() as u64).to_be_bytes());
        assert_eq!(&after_tag[8..8 + kind.len()], kind);
    }
}

#[test]
fn one_amount_written_two_ways_is_one_command_and_any_other_change_is_another() {
    let budget = |allocated_eur| {
        Command::OpenBudget(OpenBudget {
            year: 2025,
            allocated_eur,
        })
        .canonical_bytes()
    };
    assert_eq!(budget(dec!(15.00)), budget(dec!(15)));
    assert_ne!(budget(dec!(15.00)), budget(dec!(15.01)));

    // Text is length-prefixed: moving a character from one field to the next changes the bytes.
    let withdrawal = |module: &str, reason: &str| {
        Command::WithdrawModule(WithdrawModule {
            module_id: id(module),
            withdrawn_from: day("2025-10-01"),
            reason: reason.to_owned(),
        })
        .canonical_bytes()
    };
    assert_ne!(withdrawal("M-1", "2x"), withdrawal("M-12", "x"));
    let mut distinct: Vec<Vec<u8>> = one_of_each_kind()
        .iter()
        .map(Command::canonical_bytes)
        .collect();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), GOLDEN_DIGESTS.len());
}
