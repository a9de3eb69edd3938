//! A compressed file read stream by stream. Tools write several streams back to back (pigz,
//! `cat a.gz b.gz`, pbzip2, `xz -T`, zstd's frames) and some pad the end with zeros: all of
//! that is one content. Anything else after a complete stream is not part of it: the valid
//! streams are still yielded, as a content that ends there, and [`Concatenated`] says where
//! the rest began, for the walk to report once it has scanned what was valid. (The formats'
//! own multi-stream decoders fail on such data instead, and what they had decoded is lost.)
use std::{
    cell::Cell,
    io::{self, BufRead, Read},
};

use super::Format;

const BUFFER: usize = 64 * 1024;

/// The compressed input, buffered, with its position, and able to look ahead at the next
/// stream's magic across the end of its buffer.
struct Input<R> {
    inner: R,
    buf: Vec<u8>,
    pos: usize,
    end: usize,
    /// Bytes consumed from the start.
    offset: u64,
}

impl<R: Read> Input<R> {
    fn new(inner: R) -> Self {
        Input {
            inner,
            buf: vec![0; BUFFER],
            pos: 0,
            end: 0,
            offset: 0,
        }
    }

    /// Up to `n` bytes ahead, fewer only at the end of the input.
    fn peek(&mut self, n: usize) -> io::Result<&[u8]> {
        if self.end - self.pos < n {
            self.buf.copy_within(self.pos..self.end, 0);
            self.end -= self.pos;
            self.pos = 0;
            while self.end < n {
                let read = self.inner.read(&mut self.buf[self.end..])?;
                if read == 0 {
                    break;
                }
                self.end += read;
            }
        }
        Ok(&self.buf[self.pos..self.end.min(self.pos + n)])
    }
}

impl<R: Read> Read for Input<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = {
            let available = self.fill_buf()?;
            let n = available.len().min(out.len());
            out[..n].copy_from_slice(&available[..n]);
            n
        };
        self.consume(n);
        Ok(n)
    }
}

impl<R: Read> BufRead for Input<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.pos == self.end {
            self.pos = 0;
            self.end = self.inner.read(&mut self.buf)?;
        }
        Ok(&self.buf[self.pos..self.end])
    }

    fn consume(&mut self, n: usize) {
        let n = n.min(self.end - self.pos);
        self.pos += n;
        self.offset += n as u64;
    }
}

/// One stream's decoder, which stops at the stream's end and gives its input back.
enum Decoder<R: BufRead> {
    Gzip(flate2::bufread::GzDecoder<R>),
    Xz(liblzma::bufread::XzDecoder<R>),
    Bzip2(bzip2::bufread::BzDecoder<R>),
    Zstd(zstd::stream::read::Decoder<'static, R>),
}

impl<R: BufRead> Decoder<R> {
    fn new(format: Format, input: R) -> io::Result<Decoder<R>> {
        Ok(match format {
            Format::Gzip => Decoder::Gzip(flate2::bufread::GzDecoder::new(input)),
            Format::Xz => Decoder::Xz(liblzma::bufread::XzDecoder::new(input)),
            Format::Bzip2 => Decoder::Bzip2(bzip2::bufread::BzDecoder::new(input)),
            Format::Zstd => {
                Decoder::Zstd(zstd::stream::read::Decoder::with_buffer(input)?.single_frame())
            }
            Format::Tar | Format::Zip => {
                return Err(io::Error::other(format!("{format:?} is not a compression")))
            }
        })
    }

    fn into_inner(self) -> R {
        match self {
            Decoder::Gzip(d) => d.into_inner(),
            Decoder::Xz(d) => d.into_inner(),
            Decoder::Bzip2(d) => d.into_inner(),
            Decoder::Zstd(d) => d.finish(),
        }
    }
}

impl<R: BufRead> Read for Decoder<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Decoder::Gzip(d) => d.read(buf),
            Decoder::Xz(d) => d.read(buf),
            Decoder::Bzip2(d) => d.read(buf),
            Decoder::Zstd(d) => d.read(buf),
        }
    }
}

/// Whether `head` starts another stream of `format` (zstd: a frame, or a skippable frame).
fn starts_stream(format: Format, head: &[u8]) -> bool {
    match format {
        Format::Gzip => head.starts_with(&[0x1f, 0x8b]),
        Format::Xz => head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]),
        Format::Bzip2 => head.len() >= 4 && head.starts_with(b"BZh") && head[3].is_ascii_digit(),
        Format::Zstd => {
            head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd])
                || (head.len() >= 4 && head[0] & 0xf0 == 0x50 && head[1..4] == [0x2a, 0x4d, 0x18])
        }
        Format::Tar | Format::Zip => false,
    }
}

enum State<R: BufRead> {
    Decoding { decoder: Box<Decoder<R>>, from: u64 },
    Between(R),
    Done,
}

/// The content of a compressed file: its streams one after the other, up to the end of the
/// input or to data that is neither another stream nor zero padding.
pub struct Concatenated<'t, R: Read> {
    format: Format,
    state: State<Input<R>>,
    /// Set to the offset (in the compressed input) of the trailing data, when some follows
    /// the last stream.
    trailing: &'t Cell<Option<u64>>,
}

impl<'t, R: Read> Concatenated<'t, R> {
    pub fn new(
        format: Format,
        reader: R,
        trailing: &'t Cell<Option<u64>>,
    ) -> io::Result<Concatenated<'t, R>> {
        Ok(Concatenated {
            format,
            state: State::Decoding {
                decoder: Box::new(Decoder::new(format, Input::new(reader))?),
                from: 0,
            },
            trailing,
        })
    }

    /// What follows a complete stream: the next stream, the end, or trailing data.
    fn next_stream(&mut self, mut input: Input<R>) -> io::Result<State<Input<R>>> {
        // Zero padding (xz's stream padding, a tape's last block) is skipped.
        loop {
            let zeros = input.fill_buf()?.iter().take_while(|&&b| b == 0).count();
            if zeros == 0 {
                break;
            }
            input.consume(zeros);
        }
        let from = input.offset;
        let head = input.peek(6)?;
        if head.is_empty() {
            return Ok(State::Done);
        }
        if starts_stream(self.format, head) {
            let decoder = Box::new(Decoder::new(self.format, input)?);
            return Ok(State::Decoding { decoder, from });
        }
        self.trailing.set(Some(from));
        Ok(State::Done)
    }
}

impl<R: Read> Read for Concatenated<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            match std::mem::replace(&mut self.state, State::Done) {
                State::Decoding { mut decoder, from } => {
                    let n = decoder.read(buf)?;
                    if n > 0 {
                        self.state = State::Decoding { decoder, from };
                        return Ok(n);
                    }
                    let input = decoder.into_inner();
                    if input.offset == from {
                        // A decoder that ends where it began would begin there again.
                        self.trailing.set(Some(from));
                        return Ok(0);
                    }
                    self.state = State::Between(input);
                }
                State::Between(input) => self.state = self.next_stream(input)?,
                State::Done => return Ok(0),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn compress(format: Format, data: &[u8]) -> Vec<u8> {
        match format {
            Format::Gzip => {
                let mut e =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                e.write_all(data).unwrap();
                e.finish().unwrap()
            }
            Format::Xz => {
                let mut e = liblzma::write::XzEncoder::new(Vec::new(), 6);
                e.write_all(data).unwrap();
                e.finish().unwrap()
            }
            Format::Bzip2 => {
                let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::default());
                e.write_all(data).unwrap();
                e.finish().unwrap()
            }
            Format::Zstd => zstd::stream::encode_all(data, 3).unwrap(),
            Format::Tar | Format::Zip => unreachable!(),
        }
    }

    fn read(format: Format, input: &[u8]) -> (io::Result<Vec<u8>>, Option<u64>) {
        let trailing = Cell::new(None);
        let mut out = Vec::new();
        let result = Concatenated::new(format, input, &trailing)
            .and_then(|mut c| c.read_to_end(&mut out))
            .map(|_| out);
        (result, trailing.get())
    }

    #[test]
    fn streams_padding_and_trailing_data() {
        let long: Vec<u8> = (0..200_000u32).flat_map(|i| i.to_le_bytes()).collect();
        for format in [Format::Gzip, Format::Xz, Format::Bzip2, Format::Zstd] {
            let one = compress(format, b"first\n");
            let mut two = one.clone();
            two.extend(compress(format, &long));
            let (out, trailing) = read(format, &two);
            let out = out.unwrap();
            assert_eq!(&out[..6], b"first\n", "{format:?}");
            assert_eq!(&out[6..], &long[..], "{format:?}");
            assert_eq!(trailing, None, "{format:?}");

            let mut padded = two.clone();
            padded.extend([0; 4096]);
            let (out, trailing) = read(format, &padded);
            assert_eq!(out.unwrap().len(), 6 + long.len(), "{format:?}");
            assert_eq!(trailing, None, "{format:?}");

            let mut junk = two.clone();
            junk.extend([0; 8]);
            junk.extend(b"junk after the streams");
            let (out, trailing) = read(format, &junk);
            assert_eq!(out.unwrap().len(), 6 + long.len(), "{format:?}");
            assert_eq!(trailing, Some(two.len() as u64 + 8), "{format:?}");

            // A stream cut short is an error, not trailing data.
            let (out, _) = read(format, &two[..two.len() - 3]);
            assert!(out.is_err(), "{format:?}");
        }
    }
}
