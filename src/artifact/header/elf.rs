//! What the system loader reads of an ELF shared object, checked before it
//! reads it.
//!
//! `dlopen` trusts the file: a program header past the end of the file, a
//! dynamic segment without its terminator, or a string, symbol, hash or
//! relocation table at a wild address makes it read or write outside the
//! mapping and kill the process. This check walks the same structures —
//! program headers, the dynamic segment and every entry the loader follows —
//! reading the file by offset (the whole of it need not be read), and
//! refuses a file in which any of them lies
//! outside the file or outside a loaded segment. It cannot make a hostile
//! library safe (its own code runs once it is loaded); it makes a corrupt one
//! an error instead of a crash.

use crate::disk::ReadAt;
use crate::error::{Error, Result, Status};
use std::path::Path;

const PT_LOAD: u32 = 1;
const PT_DYNAMIC: u32 = 2;
const PT_TLS: u32 = 7;
const PF_X: u32 = 1;

const DT_NULL: u64 = 0;
const DT_NEEDED: u64 = 1;
const DT_PLTRELSZ: u64 = 2;
const DT_HASH: u64 = 4;
const DT_STRTAB: u64 = 5;
const DT_SYMTAB: u64 = 6;
const DT_RELA: u64 = 7;
const DT_RELASZ: u64 = 8;
const DT_RELAENT: u64 = 9;
const DT_STRSZ: u64 = 10;
const DT_SYMENT: u64 = 11;
const DT_INIT: u64 = 12;
const DT_FINI: u64 = 13;
const DT_SONAME: u64 = 14;
const DT_RPATH: u64 = 15;
const DT_REL: u64 = 17;
const DT_RELSZ: u64 = 18;
const DT_RELENT: u64 = 19;
const DT_PLTREL: u64 = 20;
const DT_JMPREL: u64 = 23;
const DT_INIT_ARRAY: u64 = 25;
const DT_FINI_ARRAY: u64 = 26;
const DT_INIT_ARRAYSZ: u64 = 27;
const DT_FINI_ARRAYSZ: u64 = 28;
const DT_RUNPATH: u64 = 29;
const DT_PREINIT_ARRAY: u64 = 32;
const DT_PREINIT_ARRAYSZ: u64 = 33;
const DT_RELRSZ: u64 = 35;
const DT_RELR: u64 = 36;
const DT_GNU_HASH: u64 = 0x6fff_fef5;
const DT_VERSYM: u64 = 0x6fff_fff0;
const DT_VERDEF: u64 = 0x6fff_fffc;
const DT_VERNEED: u64 = 0x6fff_fffe;

/// Most program headers a library may have.
const MAX_PROGRAM_HEADERS: u64 = 1024;

/// The field layout of one ELF class.
struct Layout {
    is_64: bool,
    little: bool,
}

impl Layout {
    fn word(&self) -> usize {
        if self.is_64 {
            8
        } else {
            4
        }
    }
    fn phentsize(&self) -> u64 {
        if self.is_64 {
            56
        } else {
            32
        }
    }
    fn dynent(&self) -> u64 {
        2 * self.word() as u64
    }
    fn symentsize(&self) -> u64 {
        if self.is_64 {
            24
        } else {
            16
        }
    }
    fn relaent(&self) -> u64 {
        3 * self.word() as u64
    }
    fn relent(&self) -> u64 {
        2 * self.word() as u64
    }
}

/// One `PT_LOAD` segment.
#[derive(Clone, Copy)]
struct Segment {
    offset: u64,
    vaddr: u64,
    file_size: u64,
    mem_size: u64,
    flags: u32,
}

/// Where the dynamic symbols and what they refer to are.
struct Symbols {
    /// DT_SYMTAB.
    table: u64,
    /// DT_STRSZ: names are offsets below it.
    strsz: u64,
    /// DT_VERSYM, one u16 per symbol.
    versions: Option<u64>,
}

/// The file and what is known of it so far.
struct Elf<'a, F: ReadAt + ?Sized> {
    path: &'a Path,
    bytes: &'a F,
    layout: Layout,
    loads: Vec<Segment>,
}

/// Checks the structures the loader reads; see the module documentation.
pub(super) fn check_structure<F: ReadAt + ?Sized>(path: &Path, bytes: &F) -> Result<()> {
    let mut ident = [0u8; 2];
    if !bytes.read_at(4, &mut ident) {
        return Err(Error::at(Status::NotALibrary, path, "truncated ELF file: no ELF identification"));
    }
    let layout = Layout { is_64: ident[0] == 2, little: ident[1] == 1 };
    let mut elf = Elf { path, bytes, layout, loads: Vec::new() };
    let dynamic = elf.program_headers()?;
    let Some((dyn_offset, dyn_size)) = dynamic else {
        return Err(elf.corrupt("no dynamic segment (PT_DYNAMIC): not a shared library the loader can link".into()));
    };
    elf.dynamic_section(dyn_offset, dyn_size)
}

impl<F: ReadAt + ?Sized> Elf<'_, F> {
    fn corrupt(&self, what: String) -> Error {
        Error::at(
            Status::NotALibrary,
            self.path,
            format!("truncated or corrupt ELF file ({} bytes): {what}", self.bytes.size()),
        )
    }

    /// An unsigned field of `size` bytes at `offset`, if inside the file.
    fn read(&self, offset: u64, size: usize) -> Option<u64> {
        let mut field = [0u8; 8];
        let field = &mut field[..size];
        self.bytes.read_at(offset, field).then(|| self.decode(field))
    }

    /// The unsigned number `field` holds, in the file's byte order.
    /// A field of at most 8 bytes in the file's byte order.
    fn decode(&self, field: &[u8]) -> u64 {
        let mut wide = [0u8; 8];
        let size = field.len().min(8);
        if self.layout.little {
            wide[..size].copy_from_slice(&field[..size]);
            u64::from_le_bytes(wide)
        } else {
            wide[8 - size..].copy_from_slice(&field[field.len() - size..]);
            u64::from_be_bytes(wide)
        }
    }

    fn read_word(&self, offset: u64) -> Option<u64> {
        self.read(offset, self.layout.word())
    }

    /// [`Elf::read`] of a field whose range was checked to lie in the file;
    /// it fails only if the file changed (shrank) while it was read.
    fn field(&self, offset: u64, size: usize) -> Result<u64> {
        self.read(offset, size).ok_or_else(|| self.corrupt(format!("{size} bytes at offset {offset:#x} cannot be read")))
    }

    /// Reads every program header; keeps the loadable segments and returns
    /// the dynamic segment's file range.
    fn program_headers(&mut self) -> Result<Option<(u64, u64)>> {
        let is_64 = self.layout.is_64;
        let fields = if is_64 { (self.read(32, 8), self.read(54, 2), self.read(56, 2)) } else { (self.read(28, 4), self.read(42, 2), self.read(44, 2)) };
        let (Some(phoff), Some(phentsize), Some(phnum)) = fields else {
            return Err(self.corrupt("no program header table".into()));
        };
        if phentsize != self.layout.phentsize() {
            return Err(self.corrupt(format!("program headers are {phentsize} bytes, expected {}", self.layout.phentsize())));
        }
        if phnum == 0 || phnum > MAX_PROGRAM_HEADERS {
            return Err(self.corrupt(format!("{phnum} program headers (expected 1 to {MAX_PROGRAM_HEADERS})")));
        }
        let mut dynamic = None;
        for i in 0..phnum {
            // The whole entry's range must not wrap, so the field offsets below cannot.
            let entry = phoff
                .checked_add(i * phentsize)
                .filter(|entry| entry.checked_add(phentsize).is_some())
                .ok_or_else(|| self.corrupt(format!("program header {i} lies outside the file")))?;
            let fields = if is_64 {
                (self.read(entry, 4), self.read(entry + 4, 4), self.read(entry + 8, 8), self.read(entry + 16, 8), self.read(entry + 32, 8), self.read(entry + 40, 8), self.read(entry + 48, 8))
            } else {
                (self.read(entry, 4), self.read(entry + 24, 4), self.read(entry + 4, 4), self.read(entry + 8, 4), self.read(entry + 16, 4), self.read(entry + 20, 4), self.read(entry + 28, 4))
            };
            let (Some(kind), Some(flags), Some(offset), Some(vaddr), Some(file_size), Some(mem_size), Some(align)) = fields else {
                return Err(self.corrupt(format!("program header {i} lies outside the file")));
            };
            let kind = kind as u32;
            let in_file = offset.checked_add(file_size).is_some_and(|end| end <= self.bytes.size());
            match kind {
                PT_LOAD => {
                    if !in_file {
                        return Err(self.corrupt(format!("segment {i} needs bytes {offset}..{}", offset.saturating_add(file_size))));
                    }
                    if file_size > mem_size || vaddr.checked_add(mem_size).is_none() {
                        return Err(self.corrupt(format!("segment {i}: {file_size} bytes in the file but {mem_size} in memory at {vaddr:#x}")));
                    }
                    if align > 1 && (!align.is_power_of_two() || vaddr % align != offset % align) {
                        return Err(self.corrupt(format!("segment {i}: address {vaddr:#x} and offset {offset:#x} do not agree modulo the alignment {align:#x}")));
                    }
                    if self.loads.last().is_some_and(|last| last.vaddr > vaddr) {
                        return Err(self.corrupt(format!("segment {i}: loadable segments are not in address order")));
                    }
                    self.loads.push(Segment { offset, vaddr, file_size, mem_size, flags: flags as u32 });
                }
                PT_DYNAMIC => {
                    if !in_file {
                        return Err(self.corrupt(format!("the dynamic segment needs bytes {offset}..{}", offset.saturating_add(file_size))));
                    }
                    if dynamic.is_some() {
                        return Err(self.corrupt("two dynamic segments".into()));
                    }
                    dynamic = Some((offset, file_size, vaddr));
                }
                PT_TLS if !in_file || file_size > mem_size => {
                    return Err(self.corrupt(format!("the TLS segment needs bytes {offset}..{}", offset.saturating_add(file_size))));
                }
                _ => {}
            }
        }
        if self.loads.is_empty() {
            return Err(self.corrupt("no loadable segment".into()));
        }
        let Some((offset, size, vaddr)) = dynamic else { return Ok(None) };
        // The loader reads the dynamic section at its address in memory.
        let at = self.file_range(vaddr, size, "the dynamic segment")?;
        if at != offset {
            return Err(self.corrupt(format!("the dynamic segment is at offset {offset:#x} but its address {vaddr:#x} maps offset {at:#x}")));
        }
        Ok(Some((offset, size)))
    }

    /// The file offset of `len` bytes at address `addr`, which must lie in
    /// the file-backed part of one loadable segment.
    fn file_range(&self, addr: u64, len: u64, what: &str) -> Result<u64> {
        self.file_offset(addr, len).ok_or_else(|| self.outside(addr, len, what))
    }

    /// [`Elf::file_range`] without the error, for checks that name what
    /// they checked only when it fails.
    fn file_offset(&self, addr: u64, len: u64) -> Option<u64> {
        self.loads
            .iter()
            .find(|s| addr >= s.vaddr && addr.checked_add(len).is_some_and(|end| end <= s.vaddr + s.file_size))
            .map(|s| s.offset + (addr - s.vaddr))
    }

    fn outside(&self, addr: u64, len: u64, what: &str) -> Error {
        self.corrupt(format!("{what} ({len} bytes at address {addr:#x}) lies outside the loaded segments"))
    }

    /// Whether `len` bytes at `addr` lie in the memory of one loadable
    /// segment (file-backed or not), for places the loader writes.
    fn in_memory(&self, addr: u64, len: u64) -> bool {
        self.loads.iter().any(|s| addr >= s.vaddr && addr.checked_add(len).is_some_and(|end| end <= s.vaddr + s.mem_size))
    }

    fn dynamic_section(&self, offset: u64, size: u64) -> Result<()> {
        let entry_size = self.layout.dynent();
        let word = self.layout.word() as u64;
        let mut tags = std::collections::HashMap::new();
        let mut string_refs = Vec::new();
        let mut terminated = false;
        for i in 0..size / entry_size {
            let at = offset + i * entry_size;
            let (Some(tag), Some(value)) = (self.read_word(at), self.read_word(at + word)) else { break };
            if tag == DT_NULL {
                terminated = true;
                break;
            }
            match tag {
                DT_NEEDED | DT_SONAME | DT_RPATH | DT_RUNPATH => string_refs.push((tag, value)),
                _ => {
                    tags.insert(tag, value);
                }
            }
        }
        if !terminated {
            return Err(self.corrupt("the dynamic section has no DT_NULL terminator".into()));
        }
        let get = |tag| tags.get(&tag).copied();
        let table = |tag: u64, size_tag: Option<u64>, name: &str| -> Result<Option<(u64, u64)>> {
            let Some(addr) = get(tag) else { return Ok(None) };
            let len = match size_tag {
                Some(size_tag) => get(size_tag).ok_or_else(|| self.corrupt(format!("{name} has no size entry")))?,
                None => 1,
            };
            Ok(Some((self.file_range(addr, len, name)?, len)))
        };

        let (strtab, strsz) = table(DT_STRTAB, Some(DT_STRSZ), "the string table")?
            .ok_or_else(|| self.corrupt("no string table (DT_STRTAB)".into()))?;
        // A table that ends in NUL terminates every string in it: names are
        // then checked by their offset alone.
        if strsz == 0 || self.read(strtab + strsz - 1, 1) != Some(0) {
            return Err(self.corrupt("the string table does not end with a NUL byte".into()));
        }
        for (tag, name_offset) in string_refs {
            if name_offset >= strsz {
                return Err(self.corrupt(format!("dynamic entry {tag}: name offset {name_offset} is outside the string table ({strsz} bytes)")));
            }
        }

        let symtab_addr = get(DT_SYMTAB).ok_or_else(|| self.corrupt("no symbol table (DT_SYMTAB)".into()))?;
        if let Some(syment) = get(DT_SYMENT) {
            if syment != self.layout.symentsize() {
                return Err(self.corrupt(format!("symbol entries are {syment} bytes, expected {}", self.layout.symentsize())));
            }
        }
        // The hash tables name the symbols a lookup walks; relocations name
        // others (undefined symbols need not be hashed). Each is checked.
        let symbols = Symbols { table: symtab_addr, strsz, versions: get(DT_VERSYM) };
        for i in 0..self.symbol_count(&get)? {
            self.check_symbol(&symbols, i, "the hash table")?;
        }

        for (tag, size_tag, entry_tag, entry, name) in [
            (DT_RELA, DT_RELASZ, Some(DT_RELAENT), self.layout.relaent(), "the RELA relocations"),
            (DT_REL, DT_RELSZ, Some(DT_RELENT), self.layout.relent(), "the REL relocations"),
        ] {
            if let Some(given) = entry_tag.and_then(get) {
                if given != entry {
                    return Err(self.corrupt(format!("{name}: entries are {given} bytes, expected {entry}")));
                }
            }
            if let Some((at, len)) = table(tag, Some(size_tag), name)? {
                self.relocations(at, len, entry, &symbols, name)?;
            }
        }
        if let Some((at, len)) = table(DT_JMPREL, Some(DT_PLTRELSZ), "the PLT relocations")? {
            let entry = if get(DT_PLTREL) == Some(DT_REL) { self.layout.relent() } else { self.layout.relaent() };
            self.relocations(at, len, entry, &symbols, "the PLT relocations")?;
        }
        if let Some((at, len)) = table(DT_RELR, Some(DT_RELRSZ), "the RELR relocations")? {
            self.relr(at, len)?;
        }
        for (tag, size_tag, name) in [
            (DT_INIT_ARRAY, DT_INIT_ARRAYSZ, "the initializer array"),
            (DT_FINI_ARRAY, DT_FINI_ARRAYSZ, "the finalizer array"),
            (DT_PREINIT_ARRAY, DT_PREINIT_ARRAYSZ, "the pre-initializer array"),
        ] {
            if let Some(addr) = get(tag) {
                let len = get(size_tag).ok_or_else(|| self.corrupt(format!("{name} has no size entry")))?;
                if !self.in_memory(addr, len) || len % word != 0 {
                    return Err(self.corrupt(format!("{name} ({len} bytes at {addr:#x}) lies outside the loaded segments")));
                }
            }
        }
        for (tag, name) in [(DT_INIT, "the initializer"), (DT_FINI, "the finalizer")] {
            if let Some(addr) = get(tag) {
                if !self.loads.iter().any(|s| s.flags & PF_X != 0 && addr >= s.vaddr && addr < s.vaddr + s.mem_size) {
                    return Err(self.corrupt(format!("{name} at {addr:#x} is not in an executable segment")));
                }
            }
        }
        if let Some(addr) = get(DT_VERNEED) {
            // Verneed {version, cnt: u16, file, aux, next: u32}, Vernaux {hash: u32, flags, other: u16, name, next: u32}.
            self.version_chain(addr, 16, (12, 8), Some(4), (8, 12), strsz, "the version needs")?;
        }
        if let Some(addr) = get(DT_VERDEF) {
            // Verdef {version, flags, ndx, cnt: u16, hash, aux, next: u32}, Verdaux {name, next: u32}.
            self.version_chain(addr, 20, (16, 12), None, (0, 4), strsz, "the version definitions")?;
        }
        Ok(())
    }

    /// Walks a version table as the loader does: entries linked by a `next`
    /// offset (0 ends the list), each with a list of auxiliary entries; every
    /// entry and every name must lie inside the file and the string table.
    /// `(next, aux)` and `(aux_name, aux_next)` are field offsets; `name`
    /// is the entry's own name field, if it has one.
    #[allow(clippy::too_many_arguments)]
    fn version_chain(&self, addr: u64, entry_len: u64, (next, aux): (u64, u64), name: Option<u64>, (aux_name, aux_next): (u64, u64), strsz: u64, what: &str) -> Result<()> {
        // One budget for entries and auxiliary entries together.
        const MAX_ENTRIES: u32 = 1 << 16;
        let mut budget = MAX_ENTRIES;
        let mut spend = || {
            budget = budget.checked_sub(1).ok_or_else(|| self.corrupt(format!("{what}: more than {MAX_ENTRIES} entries")))?;
            Ok::<(), Error>(())
        };
        let field = |at: u64, offset: u64| self.field(at + offset, 4);
        // The string table ends in NUL (checked once): an offset inside it names a string.
        let name_ok = |offset: u64| offset < strsz;
        let mut entry = addr;
        loop {
            spend()?;
            let at = self.file_range(entry, entry_len, what)?;
            if let Some(n) = name {
                if !name_ok(field(at, n)?) {
                    return Err(self.corrupt(format!("{what}: an entry's name is outside the string table")));
                }
            }
            let mut aux_entry = entry.checked_add(field(at, aux)?).ok_or_else(|| self.corrupt(format!("{what}: a wild offset")))?;
            loop {
                spend()?;
                let aux_at = self.file_range(aux_entry, aux_next + 4, what)?;
                if !name_ok(field(aux_at, aux_name)?) {
                    return Err(self.corrupt(format!("{what}: a version name is outside the string table")));
                }
                match field(aux_at, aux_next)? {
                    0 => break,
                    step => aux_entry = aux_entry.checked_add(step).ok_or_else(|| self.corrupt(format!("{what}: a wild offset")))?,
                }
            }
            match field(at, next)? {
                0 => return Ok(()),
                step => entry = entry.checked_add(step).ok_or_else(|| self.corrupt(format!("{what}: a wild offset")))?,
            }
        }
    }

    /// How many symbols the hash tables say there are (what the loader may
    /// index), checking every bucket and chain on the way.
    fn symbol_count(&self, get: &dyn Fn(u64) -> Option<u64>) -> Result<u64> {
        if let Some(addr) = get(DT_HASH) {
            let at = self.file_range(addr, 8, "the hash table")?;
            let nbucket = self.field(at, 4)?;
            let nchain = self.field(at + 4, 4)?;
            let at = self.file_range(addr, 8 + 4 * (nbucket + nchain), "the hash table")?;
            for i in 0..nbucket + nchain {
                if self.field(at + 8 + 4 * i, 4)? >= nchain.max(1) {
                    return Err(self.corrupt(format!("the hash table refers past its {nchain} symbols")));
                }
            }
            return Ok(nchain);
        }
        if let Some(addr) = get(DT_GNU_HASH) {
            let word = self.layout.word() as u64;
            let at = self.file_range(addr, 16, "the GNU hash table")?;
            let (nbuckets, symoffset, bloom) =
                (self.field(at, 4)?, self.field(at + 4, 4)?, self.field(at + 8, 4)?);
            if bloom == 0 || !bloom.is_power_of_two() {
                return Err(self.corrupt(format!("the GNU hash table's bloom filter has {bloom} words")));
            }
            let buckets = at + 16 + bloom * word;
            let buckets_len = 16 + bloom * word + 4 * nbuckets;
            self.file_range(addr, buckets_len, "the GNU hash table")?;
            let mut highest = None::<u64>;
            for i in 0..nbuckets {
                let first = self.field(buckets + 4 * i, 4)?;
                if first != 0 {
                    if first < symoffset {
                        return Err(self.corrupt(format!("GNU hash bucket {i} starts at symbol {first}, below the first hashed symbol {symoffset}")));
                    }
                    highest = Some(highest.map_or(first, |h| h.max(first)));
                }
            }
            let Some(mut symbol) = highest else { return Ok(symoffset) };
            // The chain of the last bucket ends the table: walk it to its end bit.
            loop {
                let chain_addr = addr + buckets_len + 4 * (symbol - symoffset);
                let at = self.file_range(chain_addr, 4, "the GNU hash chains")?;
                if self.field(at, 4)? & 1 == 1 {
                    return Ok(symbol + 1);
                }
                symbol += 1;
            }
        }
        Err(self.corrupt("no symbol hash table (DT_HASH or DT_GNU_HASH)".into()))
    }

    /// Symbol `index`, as the loader reads it: its entry (and its version,
    /// when the library has versions) inside a loaded segment, its name
    /// inside the string table.
    fn check_symbol(&self, symbols: &Symbols, index: u64, named_by: &str) -> Result<()> {
        let size = self.layout.symentsize();
        let what = || format!("symbol {index} (named by {named_by})");
        let addr = index.checked_mul(size).and_then(|offset| symbols.table.checked_add(offset));
        let addr = addr.ok_or_else(|| self.corrupt(format!("{} lies at a wild address", what())))?;
        let at = self.file_offset(addr, size).ok_or_else(|| self.outside(addr, size, &what()))?;
        let name = self.field(at, 4)?;
        if name >= symbols.strsz {
            return Err(self.corrupt(format!("{}: name offset {name} is outside the string table ({} bytes)", what(), symbols.strsz)));
        }
        if let Some(versions) = symbols.versions {
            let version = index.checked_mul(2).and_then(|offset| versions.checked_add(offset));
            let version = version.ok_or_else(|| self.corrupt(format!("{}: its version lies at a wild address", what())))?;
            self.file_offset(version, 2).ok_or_else(|| self.outside(version, 2, &format!("the version of {}", what())))?;
        }
        Ok(())
    }

    /// Each relocation writes inside a loaded segment and names a symbol
    /// the loader can read.
    fn relocations(&self, at: u64, len: u64, entry: u64, symbols: &Symbols, name: &str) -> Result<()> {
        if len % entry != 0 {
            return Err(self.corrupt(format!("{name}: {len} bytes is not a whole number of {entry}-byte entries")));
        }
        let word = self.layout.word();
        // Read a block of entries at a time: a large library has tens of
        // thousands of them.
        const BLOCK: u64 = 256;
        let mut block = vec![0u8; (BLOCK * entry) as usize];
        for i in 0..len / entry {
            let in_block = i % BLOCK;
            if in_block == 0 {
                let n = BLOCK.min(len / entry - i);
                if !self.bytes.read_at(at + i * entry, &mut block[..(n * entry) as usize]) {
                    return Err(self.corrupt(format!("{name}: entries {i} to {} reach past the end of the file", i + n - 1)));
                }
            }
            let fields = &block[(in_block * entry) as usize..];
            let (target, info) = (self.decode(&fields[..word]), self.decode(&fields[word..2 * word]));
            let word = word as u64;
            let symbol = if self.layout.is_64 { info >> 32 } else { info >> 8 };
            if !self.in_memory(target, word) {
                return Err(self.corrupt(format!("{name}: entry {i} writes to {target:#x}, outside the loaded segments")));
            }
            if symbol != 0 {
                self.check_symbol(symbols, symbol, name)?;
            }
        }
        Ok(())
    }

    /// RELR: addresses (even words) and bitmaps (odd words) of words to relocate.
    fn relr(&self, at: u64, len: u64) -> Result<()> {
        let word = self.layout.word() as u64;
        let mut base = None::<u64>;
        for i in 0..len / word {
            let value = self.read_word(at + i * word).ok_or_else(|| self.corrupt("the RELR relocations lie outside the file".into()))?;
            if value & 1 == 0 {
                if !self.in_memory(value, word) {
                    return Err(self.corrupt(format!("RELR entry {i} writes to {value:#x}, outside the loaded segments")));
                }
                base = Some(value + word);
            } else {
                let start = base.ok_or_else(|| self.corrupt("the RELR relocations start with a bitmap".into()))?;
                let bits = word * 8 - 1;
                if !self.in_memory(start, bits * word) && (1..=bits).any(|b| value >> b & 1 == 1 && !self.in_memory(start + (b - 1) * word, word)) {
                    return Err(self.corrupt(format!("RELR entry {i} writes outside the loaded segments")));
                }
                base = Some(start + bits * word);
            }
        }
        Ok(())
    }
}
