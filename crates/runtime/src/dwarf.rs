//! Source lines from a module's DWARF (`.debug_line` and friends, in custom
//! sections), for backtraces: module byte offset → file and line.
//!
//! DWARF addresses in WebAssembly are offsets from the start of the code
//! section's contents. The line programs of every unit are run once and
//! their rows kept sorted by address; a lookup takes the last row at or
//! before the address, within its sequence.

use gimli::{EndianSlice, LittleEndian};

/// A module's line table (empty without DWARF, or if it does not parse).
#[derive(Debug, Default)]
pub(crate) struct Lines {
    /// Where the code section's contents start in the module.
    code_start: u64,
    /// (address, end of its sequence, file, line), sorted by address.
    rows: Vec<(u64, u64, u32, u32)>,
    files: Vec<String>,
}

impl Lines {
    pub(crate) fn read(m: &weft_decoder::Module) -> Lines {
        let Some(code_start) = m.code_section_start else {
            return Lines::default();
        };
        let section = |name: &str| -> &[u8] {
            m.custom_sections
                .iter()
                .find(|(n, _)| n == name)
                .and_then(|(_, r)| m.bytes.get(r.clone()))
                .unwrap_or(&[])
        };
        if section(".debug_line").is_empty() {
            return Lines::default();
        }
        let load = |id: gimli::SectionId| -> Result<EndianSlice<'_, LittleEndian>, gimli::Error> {
            Ok(EndianSlice::new(section(id.name()), LittleEndian))
        };
        let mut lines = Lines {
            code_start: code_start as u64,
            ..Lines::default()
        };
        if let Ok(dwarf) = gimli::Dwarf::load(load) {
            let _ = lines.collect(&dwarf);
        }
        lines.rows.sort_unstable();
        lines
    }

    fn collect(
        &mut self,
        dwarf: &gimli::Dwarf<EndianSlice<'_, LittleEndian>>,
    ) -> Result<(), gimli::Error> {
        let mut units = dwarf.units();
        while let Some(header) = units.next()? {
            let unit = dwarf.unit(header)?;
            let Some(program) = unit.line_program.clone() else {
                continue;
            };
            let mut rows = program.rows();
            let mut sequence: Vec<(u64, u32, u32)> = Vec::new();
            while let Some((header, row)) = rows.next_row()? {
                if row.end_sequence() {
                    let end = row.address();
                    for (addr, file, line) in sequence.drain(..) {
                        self.rows.push((addr, end, file, line));
                    }
                    continue;
                }
                let Some(line) = row.line() else { continue };
                let file = match row.file(header) {
                    Some(f) => {
                        let mut name = String::new();
                        if let Some(dir) = f.directory(header)
                            && let Ok(d) = dwarf.attr_string(&unit, dir)
                        {
                            name.push_str(&d.to_string_lossy());
                            if !name.is_empty() && !name.ends_with('/') {
                                name.push('/');
                            }
                        }
                        if let Ok(n) = dwarf.attr_string(&unit, f.path_name()) {
                            let n = n.to_string_lossy();
                            if n.starts_with('/') {
                                name = n.into_owned();
                            } else {
                                name.push_str(&n);
                            }
                        }
                        name
                    }
                    None => String::from("?"),
                };
                let index = match self.files.iter().position(|f| *f == file) {
                    Some(i) => i,
                    None => {
                        self.files.push(file);
                        self.files.len() - 1
                    }
                };
                sequence.push((row.address(), index as u32, line.get() as u32));
            }
        }
        Ok(())
    }

    /// The file and line of the code at `module_offset`.
    pub(crate) fn lookup(&self, module_offset: u32) -> Option<(String, u32)> {
        let addr = u64::from(module_offset).checked_sub(self.code_start)?;
        let i = self.rows.partition_point(|r| r.0 <= addr);
        let &(_, end, file, line) = self.rows.get(i.checked_sub(1)?)?;
        (addr < end).then(|| (self.files[file as usize].clone(), line))
    }
}
