//! Folding of text people type (labels, service and technician names, keywords, commands) so
//! that it matches however it was written: lower case, Spanish accents removed.

/// Lower case without Spanish accents, for matching labels typed by people.
pub fn fold(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            'á' | 'Á' => 'a',
            'é' | 'É' => 'e',
            'í' | 'Í' => 'i',
            'ó' | 'Ó' => 'o',
            'ú' | 'Ú' | 'ü' | 'Ü' => 'u',
            'ñ' | 'Ñ' => 'n',
            c => c.to_ascii_lowercase(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_case_and_spanish_accents_only() {
        assert_eq!(fold("TELÉFONO"), "telefono");
        assert_eq!(fold("Ñandú Pingüino Ácido"), "nandu pinguino acido");
        assert_eq!(fold("Crítica"), "critica");
        // Other letters keep their accents and their case: only ASCII is lowered.
        assert_eq!(fold("Çà ÖL"), "Çà Öl");
    }
}
