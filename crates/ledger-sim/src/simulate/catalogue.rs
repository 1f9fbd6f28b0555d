//! The fixed vocabulary of a simulated year: what providers teach, which sectors companies work
//! in, how names look. Data only; the planner draws from it with its seeded generator.

use ledger_domain::{Theme, VoucherType};

/// What the providers of one theme offer.
#[derive(Clone, Copy, Debug)]
pub struct ThemeOffer {
    pub theme: Theme,
    /// How often a worker picks this theme, relative to the others.
    pub weight: u32,
    /// The voucher type made for the theme, besides the general one every module accepts.
    pub voucher_type: VoucherType,
    pub titles: &'static [&'static str],
    /// Approved lengths of its modules for one worker, in hours.
    pub hours: &'static [u32],
}

/// Technical and digital courses lead; AI grew 85% from 2023 to 2024 (docs/RULES.md §1).
pub const OFFERS: [ThemeOffer; 8] = [
    ThemeOffer {
        theme: Theme::Technical,
        weight: 22,
        voucher_type: VoucherType::General,
        titles: &[
            "Soudure semi-automatique",
            "Électricité industrielle",
            "Conduite de chariot élévateur",
            "Automates programmables",
            "Hygiène alimentaire HACCP",
            "Maintenance de machines-outils",
        ],
        hours: &[8, 16, 24, 40, 80],
    },
    ThemeOffer {
        theme: Theme::Digital,
        weight: 16,
        voucher_type: VoucherType::General,
        titles: &[
            "Excel avancé",
            "Cybersécurité en PME",
            "Marketing digital",
            "Développement web",
            "Gestion de projet agile",
        ],
        hours: &[7, 14, 21, 28, 40],
    },
    ThemeOffer {
        theme: Theme::Languages,
        weight: 14,
        voucher_type: VoucherType::Languages,
        titles: &[
            "Néerlandais professionnel",
            "Anglais des affaires",
            "Allemand pour la vente",
            "Néerlandais au téléphone",
        ],
        hours: &[30, 40, 60, 80, 120],
    },
    ThemeOffer {
        theme: Theme::Management,
        weight: 12,
        voucher_type: VoucherType::General,
        titles: &[
            "Gestion financière",
            "Management d'équipe",
            "Comptabilité pour indépendants",
            "Droit social",
        ],
        hours: &[7, 14, 21],
    },
    ThemeOffer {
        theme: Theme::Safety,
        weight: 12,
        voucher_type: VoucherType::General,
        titles: &[
            "VCA sécurité de base",
            "Premiers secours en entreprise",
            "Sécurité sur chantier",
        ],
        hours: &[8, 16],
    },
    ThemeOffer {
        theme: Theme::Ai,
        weight: 10,
        voucher_type: VoucherType::General,
        titles: &[
            "IA générative au bureau",
            "Rédiger ses prompts",
            "Apprentissage automatique appliqué",
            "Analyse de données avec l'IA",
            "Assistants IA pour PME",
        ],
        hours: &[7, 14, 21, 35],
    },
    ThemeOffer {
        theme: Theme::Green,
        weight: 8,
        voucher_type: VoucherType::EcoClimate,
        titles: &[
            "Audit énergétique",
            "Pompes à chaleur",
            "Installations photovoltaïques",
            "Économie circulaire",
            "Bilan carbone",
        ],
        hours: &[8, 16, 24, 40],
    },
    ThemeOffer {
        theme: Theme::Other,
        weight: 6,
        voucher_type: VoucherType::General,
        titles: &[
            "Logistique d'entrepôt",
            "Techniques de vente",
            "Accueil client",
        ],
        hours: &[7, 14, 21],
    },
];

/// A NACE-BEL sector of the companies, with the theme its workers favour.
#[derive(Clone, Copy, Debug)]
pub struct Sector {
    pub nace_code: &'static str,
    pub trade: &'static str,
    pub favoured_theme: Theme,
    pub weight: u32,
}

pub const SECTORS: [Sector; 20] = [
    sector("43.21", "Électricité", Theme::Technical, 8),
    sector("41.20", "Construction", Theme::Safety, 8),
    sector("47.11", "Alimentation", Theme::Management, 6),
    sector("56.10", "Restauration", Theme::Safety, 6),
    sector("62.01", "Informatique", Theme::Ai, 7),
    sector("69.20", "Fiduciaire", Theme::Digital, 6),
    sector("71.12", "Bureau d'études", Theme::Green, 5),
    sector("45.20", "Garage", Theme::Technical, 5),
    sector("49.41", "Transports", Theme::Safety, 5),
    sector("86.23", "Cabinet dentaire", Theme::Management, 3),
    sector("96.02", "Coiffure", Theme::Other, 4),
    sector("10.71", "Boulangerie", Theme::Technical, 4),
    sector("25.62", "Mécanique", Theme::Technical, 4),
    sector("70.22", "Conseil", Theme::Management, 5),
    sector("68.31", "Immobilier", Theme::Languages, 3),
    sector("46.90", "Négoce", Theme::Languages, 5),
    sector("01.13", "Maraîchage", Theme::Green, 2),
    sector("35.11", "Énergie", Theme::Green, 2),
    sector("73.11", "Publicité", Theme::Digital, 3),
    sector("55.10", "Hôtellerie", Theme::Languages, 3),
];

const fn sector(
    nace_code: &'static str,
    trade: &'static str,
    favoured_theme: Theme,
    weight: u32,
) -> Sector {
    Sector {
        nace_code,
        trade,
        favoured_theme,
        weight,
    }
}

pub const SURNAMES: [&str; 20] = [
    "Dubois",
    "Lambert",
    "Dupont",
    "Martin",
    "Simon",
    "Laurent",
    "Leclercq",
    "Lejeune",
    "Renard",
    "Mathieu",
    "Collard",
    "Gilles",
    "Henrard",
    "Wauters",
    "Piron",
    "Jacquet",
    "Lemaire",
    "Denis",
    "François",
    "Hubert",
];

pub const FIRST_NAMES: [&str; 12] = [
    "Marie", "Luc", "Sophie", "Thomas", "Julie", "Nicolas", "Anne", "Pierre", "Camille", "Olivier",
    "Chloé", "Maxime",
];

pub const COMPANY_FORMS: [&str; 4] = ["SRL", "SA", "SC", "SNC"];

pub const PROVIDER_KINDS: [&str; 6] = [
    "Centre de formation",
    "Institut",
    "Académie",
    "École",
    "Atelier",
    "Campus",
];

pub const TOWNS: [&str; 12] = [
    "Namur",
    "Liège",
    "Charleroi",
    "Mons",
    "Tournai",
    "Wavre",
    "Arlon",
    "Verviers",
    "Nivelles",
    "La Louvière",
    "Huy",
    "Dinant",
];

pub const REVERSAL_REASONS: [&str; 4] = [
    "training cancelled",
    "hours entered for the wrong worker",
    "hours entered twice",
    "trainee absent",
];

/// Relative weight of each calendar month for training (July, August and December are quiet).
pub const MONTH_WEIGHTS: [u32; 12] = [7, 9, 10, 9, 10, 10, 4, 4, 10, 11, 10, 6];
