//! Just enough of the BPF Type Format to find struct member offsets in the running kernel's
//! `/sys/kernel/btf/vmlinux`. aya parses BTF too but keeps member access private, and the
//! standalone BTF crates are LGPL; the format is small and stable (uapi `linux/btf.h`).
use std::{
    collections::HashMap,
    io,
    path::{Path, PathBuf},
};

const MAGIC: u16 = 0xeb9f;

const KIND_INT: u32 = 1;
const KIND_ARRAY: u32 = 3;
const KIND_STRUCT: u32 = 4;
const KIND_UNION: u32 = 5;
const KIND_ENUM: u32 = 6;
const KIND_TYPEDEF: u32 = 8;
const KIND_VOLATILE: u32 = 9;
const KIND_CONST: u32 = 10;
const KIND_RESTRICT: u32 = 11;
const KIND_FUNC_PROTO: u32 = 13;
const KIND_VAR: u32 = 14;
const KIND_DATASEC: u32 = 15;
const KIND_DECL_TAG: u32 = 17;
const KIND_TYPE_TAG: u32 = 18;
const KIND_ENUM64: u32 = 19;

/// Kernel BTF that cannot be read, or lacks what the agent needs.
#[derive(Debug, thiserror::Error)]
pub enum BtfError {
    #[error("cannot read {}: {error}", path.display())]
    Read { path: PathBuf, error: io::Error },
    #[error("{} is not valid BTF: {problem}", path.display())]
    Invalid { path: PathBuf, problem: BtfProblem },
    #[error("struct {0} is not in the kernel's BTF")]
    NoStruct(String),
    #[error("struct {name} has no member {member} in the kernel's BTF")]
    NoMember { name: String, member: String },
    #[error("{name}.{member} is a bit field")]
    BitField { name: String, member: String },
}

/// Why bytes are not BTF this parser reads.
#[derive(Debug, thiserror::Error)]
pub enum BtfProblem {
    #[error("truncated")]
    Truncated,
    #[error("bad magic (big-endian BTF is not supported)")]
    BadMagic,
    #[error("string section out of bounds")]
    StringsOutOfBounds,
}

struct Member {
    name: u32,
    type_id: u32,
    bit_offset: u32,
}

struct Type {
    name: u32,
    kind: u32,
    /// For modifiers and typedefs: the type referred to.
    referred: u32,
    members: Vec<Member>,
}

pub struct Btf {
    strings: Vec<u8>,
    /// Index 0 is `void`; type ids start at 1.
    types: Vec<Type>,
    structs_by_name: HashMap<String, u32>,
}

impl Btf {
    pub fn from_file(path: &Path) -> Result<Btf, BtfError> {
        let data = std::fs::read(path).map_err(|error| BtfError::Read {
            path: path.to_path_buf(),
            error,
        })?;
        Btf::parse(&data).map_err(|problem| BtfError::Invalid {
            path: path.to_path_buf(),
            problem,
        })
    }

    pub fn parse(data: &[u8]) -> Result<Btf, BtfProblem> {
        let u16_at = |at: usize| {
            data.get(at..at + 2)
                .and_then(|bytes| bytes.try_into().ok())
                .map(u16::from_le_bytes)
                .ok_or(BtfProblem::Truncated)
        };
        let u32_at = |at: usize| {
            data.get(at..at + 4)
                .and_then(|bytes| bytes.try_into().ok())
                .map(u32::from_le_bytes)
                .ok_or(BtfProblem::Truncated)
        };
        if u16_at(0)? != MAGIC {
            return Err(BtfProblem::BadMagic);
        }
        let header_len = u32_at(4)? as usize;
        let type_off = header_len + u32_at(8)? as usize;
        let type_len = u32_at(12)? as usize;
        let str_off = header_len + u32_at(16)? as usize;
        let str_len = u32_at(20)? as usize;
        let strings = data
            .get(str_off..str_off + str_len)
            .ok_or(BtfProblem::StringsOutOfBounds)?
            .to_vec();

        let mut types = vec![Type {
            name: 0,
            kind: 0,
            referred: 0,
            members: Vec::new(),
        }];
        let mut at = type_off;
        let end = type_off + type_len;
        while at < end {
            let name = u32_at(at)?;
            let info = u32_at(at + 4)?;
            let size_or_type = u32_at(at + 8)?;
            at += 12;
            let vlen = (info & 0xffff) as usize;
            let kind = (info >> 24) & 0x1f;
            let kind_flag = info >> 31 == 1;
            let mut members = Vec::new();
            match kind {
                KIND_INT | KIND_VAR | KIND_DECL_TAG => at += 4,
                KIND_ARRAY => at += 12,
                KIND_STRUCT | KIND_UNION => {
                    for _ in 0..vlen {
                        let offset = u32_at(at + 8)?;
                        members.push(Member {
                            name: u32_at(at)?,
                            type_id: u32_at(at + 4)?,
                            bit_offset: if kind_flag {
                                offset & 0x00ff_ffff
                            } else {
                                offset
                            },
                        });
                        at += 12;
                    }
                }
                KIND_ENUM | KIND_FUNC_PROTO => at += 8 * vlen,
                KIND_DATASEC | KIND_ENUM64 => at += 12 * vlen,
                _ => {}
            }
            types.push(Type {
                name,
                kind,
                referred: size_or_type,
                members,
            });
        }

        let mut btf = Btf {
            strings,
            types,
            structs_by_name: HashMap::new(),
        };
        for (id, ty) in btf.types.iter().enumerate() {
            if ty.kind == KIND_STRUCT && ty.name != 0 {
                let name = btf.string(ty.name).to_string();
                // The first definition wins; later ones are duplicates from modules.
                btf.structs_by_name.entry(name).or_insert(id as u32);
            }
        }
        Ok(btf)
    }

    fn string(&self, offset: u32) -> &str {
        let rest = self.strings.get(offset as usize..).unwrap_or_default();
        let len = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
        std::str::from_utf8(&rest[..len]).unwrap_or("")
    }

    /// Skips typedefs and qualifiers.
    fn resolve(&self, mut id: u32) -> Option<&Type> {
        for _ in 0..32 {
            let ty = self.types.get(id as usize)?;
            match ty.kind {
                KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | KIND_TYPE_TAG => {
                    id = ty.referred
                }
                _ => return Some(ty),
            }
        }
        None
    }

    /// Byte offset of `member` in `struct name`, looking into anonymous structs and unions.
    pub fn member_offset(&self, name: &str, member: &str) -> Result<u32, BtfError> {
        let id = *self
            .structs_by_name
            .get(name)
            .ok_or_else(|| BtfError::NoStruct(name.to_string()))?;
        let ty = &self.types[id as usize];
        let bits = self
            .find_member(ty, member, 0)
            .ok_or_else(|| BtfError::NoMember {
                name: name.to_string(),
                member: member.to_string(),
            })?;
        if bits % 8 != 0 {
            return Err(BtfError::BitField {
                name: name.to_string(),
                member: member.to_string(),
            });
        }
        Ok(bits / 8)
    }

    fn find_member(&self, ty: &Type, member: &str, base_bits: u32) -> Option<u32> {
        for m in &ty.members {
            if m.name != 0 {
                if self.string(m.name) == member {
                    return Some(base_bits + m.bit_offset);
                }
                continue;
            }
            let inner = self.resolve(m.type_id)?;
            if matches!(inner.kind, KIND_STRUCT | KIND_UNION) {
                if let Some(found) = self.find_member(inner, member, base_bits + m.bit_offset) {
                    return Some(found);
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The running kernel's BTF, when it has one (every machine of this project's kind does).
    #[test]
    fn finds_offsets_in_vmlinux() {
        let path = Path::new("/sys/kernel/btf/vmlinux");
        if !path.exists() {
            assert!(std::env::var("CI").is_err(), "CI must have kernel BTF");
            eprintln!("skipped: no {}", path.display());
            return;
        }
        let btf = Btf::from_file(path).unwrap();
        // `pid` comes right before `tgid` in task_struct on every kernel since 2.6.
        let pid = btf.member_offset("task_struct", "pid").unwrap();
        let tgid = btf.member_offset("task_struct", "tgid").unwrap();
        assert_eq!(tgid, pid + 4);
        // mm_struct's arg_start lives in an anonymous struct on recent kernels.
        let start = btf.member_offset("mm_struct", "arg_start").unwrap();
        let end = btf.member_offset("mm_struct", "arg_end").unwrap();
        assert_eq!(end, start + 8);
        assert!(btf.member_offset("task_struct", "no_such_member").is_err());
    }
}
