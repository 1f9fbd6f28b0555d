//! Reports agree with each other (issue 16 item 5): a company registered for 2016 whose
//! vouchers, paid in November 2016, are used in 2017 counts in 2017 under its 2016 profile in
//! the companies report and in the hours report alike; every breakdown sums to its total for
//! both years; and a registration for 2017 filed after the company's 2017 training moves its
//! hours to the new sector, where the companies report counts it.

use chrono::NaiveDate;
use ledger_domain::event::{
    BatchDraw, CompanyRegistered, HoursRedeemed, ModuleApproved, VouchersIssued,
};
use ledger_domain::{
    EnterpriseNumber, Event, Identifier, LegalForm, Region, SizeClass, Theme, TraineeStatus,
    VoucherType, WorkerPseudonym,
};
use ledger_projections::Projections;
use rust_decimal::Decimal;
use uuid::Uuid;

fn date(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("test date")
}

fn company(text: &str) -> EnterpriseNumber {
    EnterpriseNumber::parse(text).expect("test enterprise number")
}

fn id(text: &str) -> Identifier {
    Identifier::parse(text).expect("test identifier")
}

const COMPANY_2016: &str = "0403019261";
const COMPANY_2017: &str = "0431150350";

fn registered(number: &str, year: i32, sector: &str, size_class: SizeClass, on: &str) -> Event {
    Event::CompanyRegistered(CompanyRegistered {
        enterprise_number: company(number),
        year,
        name: format!("company {number}"),
        legal_form: LegalForm::CommercialCompany,
        region: Region::WalloniaFrenchSpeaking,
        fte: Decimal::from(12),
        turnover_eur: Decimal::from(1_000_000),
        balance_sheet_total_eur: Decimal::from(500_000),
        autonomous: true,
        secondary_activity_months: 0,
        nace_sector: sector.to_owned(),
        size_class,
        registered_on: date(on),
    })
}

fn issued(number: &str, batch_id: Uuid, budget_year: i32, payment_date: &str) -> Event {
    Event::VouchersIssued(VouchersIssued {
        enterprise_number: company(number),
        batch_id,
        voucher_type: VoucherType::General,
        quantity: 10,
        payment_date: date(payment_date),
        payment_reference: "+++090/9337/55493+++".to_owned(),
        paid_amount_eur: Decimal::from(150),
        face_value_eur: Decimal::from(30),
        employer_share_eur: Decimal::from(15),
        region_share_eur: Decimal::from(15),
        budget_year,
        valid_until: date(&format!("{}-10-31", budget_year + 1)),
        quota: 400,
        issued_in_year: 10,
        postings: Vec::new(),
    })
}

fn redeemed(number: &str, batch_id: Uuid, budget_year: i32, hours: u32, training: &str) -> Event {
    Event::HoursRedeemed(HoursRedeemed {
        redemption_id: Uuid::new_v4(),
        provider_id: id("AG-0012"),
        module_id: id("MOD-1"),
        enterprise_number: company(number),
        worker: WorkerPseudonym::from_bytes([hours as u8; 32]),
        trainee_status: TraineeStatus::Employee,
        voucher_type: VoucherType::General,
        hours,
        training_date: date(training),
        draws: vec![BatchDraw {
            batch_id,
            quantity: hours,
            budget_year,
            face_value_eur: Decimal::from(30),
            region_share_eur: Decimal::from(15),
            valid_until: date(&format!("{}-10-31", budget_year + 1)),
        }],
        amount_owed_eur: Decimal::from(30 * hours),
        postings: Vec::new(),
        usage_code: None,
    })
}

/// The 2016 company (sector 16, fte 2 to 50) paid in November 2016, trained in March 2017 (4
/// hours); the 2017 company (sector 62, micro) registered, paid and trained in 2017 (3 hours).
fn history() -> (Projections, Vec<Event>) {
    let (batch_2016, batch_2017) = (Uuid::new_v4(), Uuid::new_v4());
    let events = vec![
        Event::ModuleApproved(ModuleApproved {
            module_id: id("MOD-1"),
            provider_id: id("AG-0012"),
            title: "Joinery".to_owned(),
            hours_max: 40,
            accepted_voucher_types: vec![VoucherType::General],
            themes: vec![Theme::Digital],
            approved_from: date("2016-01-01"),
            approved_until: None,
        }),
        registered(
            COMPANY_2016,
            2016,
            "16.23",
            SizeClass::Fte2To50,
            "2016-02-01",
        ),
        issued(COMPANY_2016, batch_2016, 2016, "2016-11-20"),
        registered(COMPANY_2017, 2017, "62.01", SizeClass::Micro, "2017-01-10"),
        issued(COMPANY_2017, batch_2017, 2017, "2017-01-20"),
        redeemed(COMPANY_2016, batch_2016, 2016, 4, "2017-03-01"),
        redeemed(COMPANY_2017, batch_2017, 2017, 3, "2017-03-02"),
    ];
    let mut projections = Projections::default();
    for (index, event) in events.iter().enumerate() {
        projections
            .apply(index as u64 + 1, event)
            .expect("the event fits");
    }
    (projections, events)
}

/// Every breakdown of the companies and hours reports of `year` sums to its total, and each
/// sector with hours has a company benefiting under it, and the other way round.
fn assert_reports_agree(projections: &Projections, year: i32) {
    let report = projections.companies_report(year);
    let total = &report.total;
    for (name, breakdown) in [
        (
            "size class",
            report.by_size_class.values().collect::<Vec<_>>(),
        ),
        ("sector", report.by_sector.values().collect::<Vec<_>>()),
    ] {
        let sum = |count: fn(&ledger_projections::CompanyCounts) -> u32| {
            breakdown.iter().map(|counts| count(counts)).sum::<u32>()
        };
        assert_eq!(sum(|c| c.registered), total.registered, "{year} {name}");
        assert_eq!(sum(|c| c.holding), total.holding, "{year} {name}");
        assert_eq!(sum(|c| c.benefiting), total.benefiting, "{year} {name}");
    }
    let empty = ledger_projections::YearFigures::default();
    let hours = &projections.years.get(&year).unwrap_or(&empty).hours;
    assert_eq!(
        hours.by_voucher_type.values().sum::<u64>(),
        hours.total,
        "{year}"
    );
    assert_eq!(
        hours.by_provider.values().sum::<u64>(),
        hours.total,
        "{year}"
    );
    assert_eq!(hours.by_sector.values().sum::<u64>(), hours.total, "{year}");
    let sectors_with_hours: Vec<&String> = hours.by_sector.keys().collect();
    let sectors_benefiting: Vec<&String> = report
        .by_sector
        .iter()
        .filter(|(_, counts)| counts.benefiting > 0)
        .map(|(sector, _)| sector)
        .collect();
    assert_eq!(
        sectors_with_hours, sectors_benefiting,
        "{year}: the same rule"
    );
}

#[test]
fn a_company_registered_in_2016_using_its_vouchers_in_2017_counts_under_its_2016_profile_everywhere(
) {
    let (projections, _) = history();
    for year in [2016, 2017] {
        assert_reports_agree(&projections, year);
    }
    let report_2017 = projections.companies_report(2017);
    let counts = |c: &ledger_projections::CompanyCounts| (c.registered, c.holding, c.benefiting);
    assert_eq!(counts(&report_2017.total), (1, 1, 2));
    assert_eq!(
        report_2017.by_sector.get("16").map(counts),
        Some((0, 0, 1)),
        "benefiting in 2017 under its 2016 sector"
    );
    assert_eq!(
        report_2017
            .by_size_class
            .get(&SizeClass::Fte2To50)
            .map(counts),
        Some((0, 0, 1))
    );
    let hours_2017 = &projections.years[&2017].hours;
    assert_eq!(hours_2017.by_sector.get("16"), Some(&4));
    assert_eq!(hours_2017.by_sector.get("62"), Some(&3));
    let report_2016 = projections.companies_report(2016);
    assert_eq!(counts(&report_2016.total), (1, 1, 0));
    assert_eq!(report_2016.by_sector.get("16").map(counts), Some((1, 1, 0)));
}

#[test]
fn a_registration_for_the_training_year_filed_after_the_training_moves_its_hours_to_the_new_sector()
{
    let (mut projections, events) = history();
    // The 2016 company registers for 2017 after its March training, now in sector 62.
    projections
        .apply(
            events.len() as u64 + 1,
            &registered(
                COMPANY_2016,
                2017,
                "62.02",
                SizeClass::Fte2To50,
                "2017-04-01",
            ),
        )
        .expect("the registration fits");
    for year in [2016, 2017] {
        assert_reports_agree(&projections, year);
    }
    let hours_2017 = &projections.years[&2017].hours;
    assert_eq!(hours_2017.by_sector.get("16"), None);
    assert_eq!(hours_2017.by_sector.get("62"), Some(&7));
    assert_eq!(
        projections
            .companies_report(2017)
            .by_sector
            .get("62")
            .map(|c| c.benefiting),
        Some(2)
    );
    // 2016 keeps its own registration.
    assert_eq!(
        projections
            .companies_report(2016)
            .by_sector
            .get("16")
            .map(|c| c.registered),
        Some(1)
    );
}
