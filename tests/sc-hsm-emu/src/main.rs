//! A virtual SmartCard-HSM for tests: connects to pcscd's vpcd driver
//! (vsmartcard-vpcd; the reader listens on localhost TCP) and answers APDUs
//! the way the card does, keeping its state in a file so that it survives
//! restarts. Test infrastructure only: never shipped with hwsigner.
//!
//! Usage: sc-hsm-emu --state FILE [--port 35963] [--host 127.0.0.1]
//!        [--serial DEEM12345] [--rsa-sign-ms N] [--ec-sign-ms N] [--events FILE]
//!        [--counting-challenge]
//!
//! `--counting-challenge` makes GET CHALLENGE answer 00 01 02 ...: a card with a
//! predictable random generator.
//!
//! `--events` appends a line `reset` to FILE for every warm reset pcscd passes
//! on (a client disconnecting with SCARD_RESET_CARD), which logs every other
//! client of the card out: tests use it to show that hwsigner never does that.
//! It also appends `sign` for every SIGN command, so a test can act at a known
//! point of a signing run.
//!
//! Killing the process (or closing the socket) is a card removal; starting it
//! again is an insertion.

mod apdu;
mod card;

use card::{ATR, Card, Delays};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::Duration;

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned()
}

/// Acknowledges at once what vpcd sent. vpcd writes a command's length and
/// its bytes in two sends; with Nagle on its side and a delayed ACK on ours
/// the second send waits 40 ms, which made every APDU cost 44 ms instead of
/// a real card's few. The kernel clears the flag again, so it is set after
/// every read.
fn quick_ack(s: &TcpStream) {
    use std::os::fd::AsRawFd;
    let on: libc::c_int = 1;
    // SAFETY: a valid socket descriptor and a c_int option of the right size.
    unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_QUICKACK,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

fn read_msg(s: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 2];
    quick_ack(s);
    s.read_exact(&mut len)?;
    quick_ack(s);
    let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
    s.read_exact(&mut buf)?;
    quick_ack(s);
    Ok(buf)
}

fn write_msg(s: &mut TcpStream, b: &[u8]) -> std::io::Result<()> {
    let mut out = (b.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(b);
    s.write_all(&out)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(state) = arg(&args, "--state") else {
        eprintln!(
            "usage: sc-hsm-emu --state FILE [--port 35963] [--host 127.0.0.1] [--serial DEEM12345] [--rsa-sign-ms N] [--ec-sign-ms N] [--events FILE] [--counting-challenge]"
        );
        std::process::exit(2);
    };
    let port: u16 = arg(&args, "--port").and_then(|p| p.parse().ok()).unwrap_or(35963);
    let host = arg(&args, "--host").unwrap_or_else(|| "127.0.0.1".into());
    let serial = arg(&args, "--serial").unwrap_or_else(|| format!("DEEM{port:05}"));
    let ms = |n: &str| Duration::from_millis(arg(&args, n).and_then(|v| v.parse().ok()).unwrap_or(0));
    let delays = Delays { rsa_sign: ms("--rsa-sign-ms"), ec_sign: ms("--ec-sign-ms") };
    let mut card = Card::open(PathBuf::from(state), &serial, delays);
    card.counting_challenge = args.iter().any(|a| a == "--counting-challenge");
    let events = arg(&args, "--events").map(PathBuf::from);
    let note = |what: &[u8]| {
        if let Some(path) = &events
            && let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(path)
        {
            let _ = f.write_all(what);
        }
    };
    loop {
        let Ok(mut s) = TcpStream::connect((host.as_str(), port)) else {
            std::thread::sleep(Duration::from_millis(200));
            continue;
        };
        let _ = s.set_nodelay(true);
        card.reset();
        while let Ok(msg) = read_msg(&mut s) {
            let reply = match msg.as_slice() {
                [0x00] | [0x01] => {
                    card.reset();
                    continue;
                }
                [0x02] => {
                    note(b"reset\n");
                    card.reset();
                    continue;
                }
                [0x04] => ATR.to_vec(),
                apdu => {
                    if apdu.get(1) == Some(&0x68) {
                        note(b"sign\n");
                    }
                    card.process(apdu)
                }
            };
            if write_msg(&mut s, &reply).is_err() {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
