//! The scheme's closed vocabularies: voucher types, size classes, legal forms, regions, trainee
//! statuses and module themes. Each has a stable snake_case name used in configuration, in
//! command digests and in messages.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VoucherType {
    /// Chèque-formation (CF).
    General,
    /// Chèque-formation langues (CFL).
    Languages,
    /// Chèque Éco-Climat.
    EcoClimate,
}

impl VoucherType {
    pub const ALL: [VoucherType; 3] = [
        VoucherType::General,
        VoucherType::Languages,
        VoucherType::EcoClimate,
    ];

    pub fn name(self) -> &'static str {
        match self {
            VoucherType::General => "general",
            VoucherType::Languages => "languages",
            VoucherType::EcoClimate => "eco_climate",
        }
    }
}

/// The size class that sets a company's yearly quotas.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SizeClass {
    /// Self-employed in a secondary occupation for at least six months.
    SecondarySelfEmployed,
    /// 0 to 1.9 full-time equivalents, or self-employed in a main occupation.
    Micro,
    #[serde(rename = "fte_2_to_50")]
    Fte2To50,
    #[serde(rename = "fte_51_to_100")]
    Fte51To100,
    #[serde(rename = "fte_101_to_200")]
    Fte101To200,
    #[serde(rename = "fte_201_to_250")]
    Fte201To250,
}

impl SizeClass {
    pub const ALL: [SizeClass; 6] = [
        SizeClass::SecondarySelfEmployed,
        SizeClass::Micro,
        SizeClass::Fte2To50,
        SizeClass::Fte51To100,
        SizeClass::Fte101To200,
        SizeClass::Fte201To250,
    ];

    pub fn name(self) -> &'static str {
        match self {
            SizeClass::SecondarySelfEmployed => "secondary_self_employed",
            SizeClass::Micro => "micro",
            SizeClass::Fte2To50 => "fte_2_to_50",
            SizeClass::Fte51To100 => "fte_51_to_100",
            SizeClass::Fte101To200 => "fte_101_to_200",
            SizeClass::Fte201To250 => "fte_201_to_250",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LegalForm {
    CommercialCompany,
    SelfEmployedMain,
    SelfEmployedSecondary,
    /// Association sans but lucratif: never eligible.
    NonProfit,
    /// State, Communities, Regions, provinces, communes, CPAS, intercommunales and every other
    /// public-law body: never eligible.
    PublicBody,
}

/// Where the company's main seat of activity is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Region {
    WalloniaFrenchSpeaking,
    WalloniaGermanSpeaking,
    Brussels,
    Flanders,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TraineeStatus {
    Employee,
    TemporaryWorker,
    SelfEmployedManagerOrPartner,
    HelpingSpouse,
    SecondarySelfEmployed,
    PfiTrainee,
    Apprentice,
    Student,
    Intern,
}

impl TraineeStatus {
    pub fn name(self) -> &'static str {
        match self {
            TraineeStatus::Employee => "employee",
            TraineeStatus::TemporaryWorker => "temporary_worker",
            TraineeStatus::SelfEmployedManagerOrPartner => "self_employed_manager_or_partner",
            TraineeStatus::HelpingSpouse => "helping_spouse",
            TraineeStatus::SecondarySelfEmployed => "secondary_self_employed",
            TraineeStatus::PfiTrainee => "pfi_trainee",
            TraineeStatus::Apprentice => "apprentice",
            TraineeStatus::Student => "student",
            TraineeStatus::Intern => "intern",
        }
    }

    /// Whether vouchers may pay for this person's training (docs/RULES.md rule 10).
    pub fn may_be_trained_with_vouchers(self) -> bool {
        match self {
            TraineeStatus::Employee
            | TraineeStatus::TemporaryWorker
            | TraineeStatus::SelfEmployedManagerOrPartner
            | TraineeStatus::HelpingSpouse
            | TraineeStatus::SecondarySelfEmployed => true,
            TraineeStatus::PfiTrainee
            | TraineeStatus::Apprentice
            | TraineeStatus::Student
            | TraineeStatus::Intern => false,
        }
    }
}

/// What a module is about; reports count training hours by theme.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Theme {
    Ai,
    Digital,
    Green,
    Languages,
    Management,
    Technical,
    Safety,
    Other,
    Behavioural,
    WellBeing,
    PersonalDevelopment,
}

impl Theme {
    pub fn name(self) -> &'static str {
        match self {
            Theme::Ai => "ai",
            Theme::Digital => "digital",
            Theme::Green => "green",
            Theme::Languages => "languages",
            Theme::Management => "management",
            Theme::Technical => "technical",
            Theme::Safety => "safety",
            Theme::Other => "other",
            Theme::Behavioural => "behavioural",
            Theme::WellBeing => "well_being",
            Theme::PersonalDevelopment => "personal_development",
        }
    }

    /// Behavioural, well-being and personal-development courses are never approved.
    pub fn may_be_approved(self) -> bool {
        !matches!(
            self,
            Theme::Behavioural | Theme::WellBeing | Theme::PersonalDevelopment
        )
    }
}
