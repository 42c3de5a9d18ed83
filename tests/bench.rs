//! Benchmarks of the core pipeline: the real `folio` binary (release build) against the real
//! Dovecot + Postfix on loopback (scripts/mailstack), on SQLite, or on PostgreSQL when
//! `FOLIO_TEST_POSTGRES` is set (`scripts/bench --postgres`), on whatever machine runs them.
//!
//! Every benchmark is `#[ignore]`, so `cargo test` skips them. Run them all with `scripts/bench`,
//! which does:
//!
//! ```sh
//! cargo test --release --test bench -- --ignored --nocapture --test-threads=1
//! ```
//!
//! Each benchmark prints `RESULT | ...` lines (figure, target, PASS/MISS) plus `info` lines that
//! explain where the time went. The written report is docs/benchmarks.md.
//!
//! 1. `bench_1_ingest`: 10,000 realistic requests put into the help-desk INBOX with one
//!    MULTIAPPEND while folio is down; folio is started and timed until every message has a
//!    ticket and a queued confirmation.
//! 2. `bench_2_end_to_end`: the same run, until every confirmation was accepted by Postfix, next
//!    to Postfix's own acceptance ceiling measured with a minimal lettre client (pooled
//!    `AsyncSmtpTransport`, 4 connections, like folio), and again with lettre over
//!    `TCP_NODELAY` sockets (what Postfix accepts when the client does not stall).
//! 3. `bench_3_latency`: 50 single messages over SMTP while folio waits in IDLE.
//! 4. `bench_4_cpu_and_memory`: CPU per message and peak RSS of the 10k run; idle RSS.
//! 5. `bench_5_big_processed_folder`: start-up with 100,000 messages in `Procesados`.
//! 6. `bench_6_poison_mail`: 1,000 requests at 50/s over SMTP with a poison mail (nested HTML)
//!    among them; the normal ones' share of latency, against the same run without the poison.
//! 7. `bench_7_scheduled_work`: a store of 100,000 tickets with 10,000 items due (reminders,
//!    closings, surveys); the daemon's scheduler sweeps them in process on a fixed clock, then
//!    sweeps with nothing due; then `folio run` idles on that store sweeping every second.
//! 8. `bench_8_instances`: the 10k backlog on one and on three `folio run` of one deployment
//!    (same database, same mailbox), as a ratio; then `kill -9` of the mailbox holder, timed
//!    until `folio status` names another holder.
//!
//! `scripts/bench --postgres` runs them on PostgreSQL (except 7, which builds a SQLite file);
//! `scripts/bench --pin` pins the mail servers to CPU 0 and this process (so folio, its
//! PostgreSQL and the minimal client of benchmark 2) to CPU 1.
//!
//! Runs 1, 2 and 4 share one 10k run (made by whichever of them runs first). Every address the
//! benchmarks use starts with `bench-`, so `scripts/bench` can remove their maildirs afterwards.

// Benchmarks measure the real binary in wall-clock time; no fixed clock is in play.
#![allow(clippy::disallowed_methods)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[allow(dead_code)]
#[path = "e2e/harness.rs"]
mod harness;

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use folio::desk::catalog::{Priority, TicketType};
use folio::desk::decide::NewTicket;
use folio::desk::lifecycle::{CloseReason, Due, DueKind, LifeEffect};
use folio::desk::requester::Requester;
use folio::desk::routing::Routing;
use folio::desk::ticket::{Change, Status};
use folio::store::{MessageRow, Store, TicketRow};
use harness::{stack, unique, wait_for, Folio, Options};
use lettre::address::Envelope;
use lettre::transport::smtp::client::AsyncSmtpConnection;
use lettre::transport::smtp::extension::ClientId;
use sqlx::any::AnyPoolOptions;
use sqlx::AnyPool;

/// Messages in the backlog (benchmarks 1, 2, 4).
const BACKLOG: usize = 10_000;
/// Messages already in `Procesados` (benchmark 5).
const PROCESSED: usize = 100_000;
/// Single messages timed one at a time (benchmark 3).
const LATENCY_SAMPLES: usize = 50;
/// How often the backlog runs look at folio's database. The figures come from folio's log and
/// its timestamps, not from when a poll saw the end, so a slow poll costs no accuracy; a fast
/// one costs the database: `count(*)` is a scan on PostgreSQL, and at 20 ms its three scans of
/// growing tables took a large share of the server's CPU during ingest.
const POLL: Duration = Duration::from_millis(100);
/// folio's default `smtp.concurrency`, used by the ceiling client too.
const SMTP_CONCURRENCY: usize = 4;
/// Distinct requesters writing the backlog (10 requests each).
const REQUESTERS: usize = 1_000;

// ---------------------------------------------------------------------------------------------
// Output

/// One figure against its target, in a fixed shape `scripts/bench` collects into a table.
fn result(bench: &str, figure: &str, value: String, target: &str, pass: Option<bool>) {
    let verdict = match pass {
        Some(true) => "PASS",
        Some(false) => "MISS",
        None => "-",
    };
    let pinned = if pinned() { ", pinned" } else { "" };
    println!(
        "RESULT | {bench} ({}{pinned}) | {figure} | {value} | {target} | {verdict}",
        engine()
    );
}

/// Whether `scripts/bench --pin` pinned the mail servers to one core and this process (so folio
/// and the ceiling client) to the other; it names the mail servers' master pids in
/// `FOLIO_BENCH_MAIL_PIDS`.
fn pinned() -> bool {
    std::env::var("FOLIO_BENCH_MAIL_PIDS").is_ok_and(|s| !s.trim().is_empty())
}

/// The parent pid of a process (field 4 of /proc/PID/stat).
fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 2..];
    after_name.split_whitespace().nth(1)?.parse().ok()
}

/// `Cpus_allowed_list` of a process, as the kernel prints it ("0", "1", "0-1").
fn cpus_allowed(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
                .map(|v| v.trim().to_string())
        })
        .unwrap_or_else(|| "?".into())
}

/// Where the mail servers' processes may run right now: every live descendant of the masters
/// `scripts/bench --pin` named (Dovecot's lmtp/auth/imap, Postfix's smtpd/cleanup/qmgr/lmtp...),
/// grouped as "comm ×count → CPUs". The evidence that children forked during the run inherited
/// the pinning; empty when not pinned.
fn mail_affinity() -> String {
    let masters: Vec<u32> = std::env::var("FOLIO_BENCH_MAIL_PIDS")
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect();
    if masters.is_empty() {
        return String::new();
    }
    let mut seen: std::collections::BTreeMap<(String, String), usize> = Default::default();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let mut p = pid;
        let mut ours = false;
        for _ in 0..16 {
            if masters.contains(&p) {
                ours = true;
                break;
            }
            match parent_of(p) {
                Some(q) if q > 1 => p = q,
                _ => break,
            }
        }
        if !ours {
            continue;
        }
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        *seen
            .entry((comm.trim().to_string(), cpus_allowed(pid)))
            .or_default() += 1;
    }
    seen.iter()
        .map(|((comm, cpus), n)| format!("{comm} ×{n} → CPU {cpus}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One `info` line with the CPU affinity of the mail servers' processes, of `pid` (folio) and
/// of this process, when pinned.
fn report_affinity(when: &str, folio_pid: Option<u32>) {
    if !pinned() {
        return;
    }
    let folio = folio_pid.map_or(String::new(), |p| {
        format!("; folio → CPU {}", cpus_allowed(p))
    });
    info(format!(
        "CPU affinity {when}: mail servers: {}{folio}; benchmark process → CPU {}",
        mail_affinity(),
        cpus_allowed(std::process::id())
    ));
}

fn info(text: impl AsRef<str>) {
    println!("  info: {}", text.as_ref());
}

fn secs(d: chrono::Duration) -> f64 {
    d.num_microseconds().unwrap_or(i64::MAX) as f64 / 1e6
}

fn ms(d: chrono::Duration) -> f64 {
    secs(d) * 1000.0
}

/// Nearest-rank percentile of an ascending slice.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

// ---------------------------------------------------------------------------------------------
// Realistic help-desk requests

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

const FIRST_NAMES: &[&str] = &[
    "María",
    "José",
    "Guadalupe",
    "Juan",
    "Fernanda",
    "Luis",
    "Ana",
    "Carlos",
    "Sofía",
    "Miguel",
    "Verónica",
    "Jorge",
    "Alejandra",
    "Ricardo",
    "Patricia",
    "Héctor",
    "Lucía",
    "Raúl",
    "Daniela",
    "Andrés",
    "Mónica",
    "Óscar",
    "Rocío",
    "Iván",
];
const LAST_NAMES: &[&str] = &[
    "Hernández",
    "García",
    "Martínez",
    "López",
    "González",
    "Pérez",
    "Rodríguez",
    "Sánchez",
    "Ramírez",
    "Cruz",
    "Flores",
    "Gómez",
    "Morales",
    "Vázquez",
    "Jiménez",
    "Reyes",
    "Díaz",
    "Torres",
    "Gutiérrez",
    "Ruiz",
    "Mendoza",
    "Aguilar",
    "Ortiz",
    "Castillo",
];
const DEPARTMENTS: &[&str] = &[
    "Recursos Humanos",
    "Contabilidad",
    "Dirección Jurídica",
    "Servicios Escolares",
    "Biblioteca Central",
    "Planeación y Desarrollo",
    "Control Escolar",
    "Tesorería",
    "Comunicación Social",
    "Facultad de Ingeniería",
    "Adquisiciones",
    "Archivo General",
];
const SUBJECTS: &[&str] = &[
    "No puedo entrar al correo institucional",
    "La impresora del tercer piso no imprime",
    "Solicitud de alta en el sistema de nómina",
    "Error al abrir el sistema de control escolar",
    "Restablecer contraseña de la VPN",
    "Mi equipo está muy lento después de la actualización",
    "Instalación de software para el área",
    "Sin acceso a la carpeta compartida",
    "El proyector de la sala de juntas no enciende",
    "Cambio de extensión telefónica",
    "No llegan los correos externos",
    "Cuenta para personal de nuevo ingreso",
    "Falla en la red inalámbrica del edificio B",
    "No puedo firmar documentos con la e.firma",
    "Pantalla azul al encender la computadora",
    "Recuperar archivos borrados de la unidad de red",
    "Actualizar mis datos en el directorio",
    "El escáner no envía los documentos al correo",
    "Problema con el certificado del portal de trámites",
    "Préstamo de laptop para evento del viernes",
    "URGENTE: no funciona el sistema de caja",
    "Solicitud de acceso al SIIA",
];
const OPENINGS: &[&str] = &[
    "Buenos días,",
    "Buenas tardes,",
    "Hola,",
    "Estimada Mesa de Ayuda:",
    "Buen día, compañeros de Sistemas:",
    "Muy buenos días, disculpen la molestia.",
];
const SENTENCES: &[&str] = &[
    "Desde ayer por la tarde no puedo iniciar sesión; el sistema me dice que la contraseña es inválida aunque la cambié la semana pasada.",
    "Ya reinicié el equipo dos veces y el problema continúa.",
    "El mensaje de error dice «No se puede establecer conexión con el servidor» y después se cierra la ventana.",
    "Necesitamos que quede resuelto antes del cierre de mes porque tenemos que entregar la nómina el día 30.",
    "La impresora muestra la luz naranja parpadeando y en la pantalla aparece «atasco de papel», pero ya revisamos las bandejas y no hay nada.",
    "Somos cinco personas en la oficina y a todos nos pasa lo mismo.",
    "Les comento que la computadora tarda casi diez minutos en encender y los programas se congelan a cada rato.",
    "Adjunto una captura de pantalla del error para que puedan revisarlo.",
    "Les pido de favor darle de alta en el sistema a la compañera que se incorpora el lunes a nuestra área.",
    "Requiero que se instale la versión más reciente del programa de contabilidad en mi equipo, con número de inventario 004512.",
    "Al intentar abrir la carpeta compartida aparece «Acceso denegado» y antes sí podía entrar sin problema.",
    "En la sala de juntas del segundo piso el proyector enciende pero no detecta la computadora portátil.",
    "No sé si sea por la actualización de Windows que se instaló anoche.",
    "Cuando intento enviar un correo a una dirección externa me regresa un mensaje de error.",
    "El acceso a internet por la red inalámbrica se corta cada cinco minutos en todo el edificio B.",
    "La firma electrónica me marca que el certificado no es válido, aunque lo renové en marzo.",
    "¿Podrían apoyarme con una visita a mi lugar? Estoy en la planta baja, junto a ventanillas.",
    "Borré por error una carpeta con los oficios de este año de la unidad de red y necesito recuperarla.",
    "Mi extensión cambió cuando nos mudamos de oficina y en el directorio sigue apareciendo la anterior.",
    "El escáner de la multifuncional digitaliza los documentos, pero nunca llegan al correo.",
    "Los usuarios externos reportan que el portal de trámites muestra una advertencia de seguridad.",
    "Necesitamos una laptop con cañón para el evento del viernes a las 10:00 en el auditorio.",
    "La caja no puede cobrar porque el sistema se queda en «Procesando…» y hay fila de alumnos esperando.",
    "Agradecería mucho que me indicaran si hay algún avance o si necesitan más información.",
    "Ya lo había reportado por teléfono, pero me pidieron enviarlo también por correo.",
    "El número de serie del equipo es MXL1234ABC y está a nombre de la dirección.",
    "Quedo pendiente, ya que sin esto no puedo continuar con mis actividades.",
    "Disculpen la insistencia, pero es bastante urgente para el área.",
];
const CLOSINGS: &[&str] = &[
    "Saludos cordiales,",
    "Muchas gracias de antemano.",
    "Quedo atenta a sus comentarios.",
    "Gracias por su apoyo.",
    "Atentamente,",
    "Saludos.",
];
const MAILERS: &[&str] = &[
    "User-Agent: Mozilla Thunderbird",
    "X-Mailer: Microsoft Outlook 16.0",
    "X-Mailer: Apple Mail (2.3774.500.171.1.1)",
    "User-Agent: Roundcube Webmail/1.6.5",
];

/// The shape of a generated request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// text/plain, 8bit or quoted-printable.
    Plain,
    /// multipart/alternative: text/plain + text/html.
    Alternative,
    /// multipart/mixed: text/plain + a small attachment.
    Attachment,
}

fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len() * 4 / 3 + 4);
    for c in data.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= c.len() {
                out.push(T[(n >> shift & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Base64 in lines of 76 characters, CRLF-terminated.
fn base64_lines(data: &[u8]) -> String {
    let b = base64(data);
    let mut out = String::new();
    for chunk in b.as_bytes().chunks(76) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push_str("\r\n");
    }
    out
}

/// RFC 2047 encoded-word when the text is not ASCII.
fn header_text(text: &str) -> String {
    if text.is_ascii() {
        text.to_string()
    } else {
        format!("=?UTF-8?B?{}?=", base64(text.as_bytes()))
    }
}

/// Quoted-printable (RFC 2045) of LF-separated UTF-8 text, CRLF line ends.
fn quoted_printable(text: &str) -> String {
    let mut out = String::new();
    for line in text.split('\n') {
        let bytes = line.as_bytes();
        let mut col = 0;
        for (i, &b) in bytes.iter().enumerate() {
            let last = i + 1 == bytes.len();
            let token = if (b == b' ' || b == b'\t') && last {
                format!("={b:02X}")
            } else if b == b' ' || b == b'\t' || (33..=126).contains(&b) && b != b'=' {
                (b as char).to_string()
            } else {
                format!("={b:02X}")
            };
            if col + token.len() > 75 {
                out.push_str("=\r\n");
                col = 0;
            }
            col += token.len();
            out.push_str(&token);
        }
        out.push_str("\r\n");
    }
    out
}

/// Word-wraps to 72 characters.
fn wrap(text: &str) -> String {
    let mut out = String::new();
    let mut col = 0;
    for word in text.split(' ') {
        let n = word.chars().count();
        if col > 0 && col + 1 + n > 72 {
            out.push('\n');
            col = 0;
        } else if col > 0 {
            out.push(' ');
            col += 1;
        }
        out.push_str(word);
        col += n;
    }
    out
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// One realistic help-desk request (1–4 KB) from `from` to the help desk `to`.
fn request(rng: &mut Rng, from: &str, to: &str, message_id: &str) -> (Vec<u8>, Shape) {
    let first = *rng.pick(FIRST_NAMES);
    let last = format!("{} {}", rng.pick(LAST_NAMES), rng.pick(LAST_NAMES));
    let name = format!("{first} {last}");
    let department = *rng.pick(DEPARTMENTS);
    let shape = match rng.below(100) {
        0..=59 => Shape::Plain,
        60..=94 => Shape::Alternative,
        _ => Shape::Attachment,
    };
    let target = rng.range(1_000, 4_000);
    let attachment: Option<(&str, &str, Vec<u8>)> = (shape == Shape::Attachment).then(|| {
        let n = rng.range(200, 900);
        if rng.chance(50) {
            let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
            png.extend((0..n).map(|_| rng.next() as u8));
            ("captura de pantalla.png", "image/png", png)
        } else {
            let mut log = String::new();
            while log.len() < n {
                log.push_str(&format!(
                    "2026-11-26 08:{:02}:{:02} ERROR [conexion] tiempo de espera agotado al conectar con srv-nomina-01:1433\r\n",
                    rng.below(60),
                    rng.below(60)
                ));
            }
            ("error.log", "text/plain; charset=us-ascii", log.into_bytes())
        }
    });
    let mut paragraphs: Vec<String> = (0..16)
        .map(|_| {
            let mut picked: Vec<&str> = Vec::new();
            let k = rng.range(1, 3);
            while picked.len() < k {
                let s = *rng.pick(SENTENCES);
                if !picked.contains(&s) {
                    picked.push(s);
                }
            }
            picked.join(" ")
        })
        .collect();
    let mut signature = vec![name.clone()];
    if rng.chance(70) {
        signature.push(format!("Departamento: {department}"));
    } else {
        signature.push(department.to_string());
    }
    if rng.chance(50) {
        signature.push(format!(
            "Teléfono: (722) 2769600 ext. {}",
            rng.range(1000, 9999)
        ));
    }
    let opening = *rng.pick(OPENINGS);
    let closing = *rng.pick(CLOSINGS);
    let subject = *rng.pick(SUBJECTS);
    let date = format!(
        "Fri, 27 Nov 2026 09:{:02}:{:02} -0600",
        rng.below(60),
        rng.below(60)
    );
    let received = format!(
        "Received: from pc-{host}.example.test (pc-{host}.example.test [10.20.{a}.{b}])\r\n\tby mail.example.test with ESMTPSA id {id:016x}\r\n\tfor <{to}>; {date}\r\n",
        host = rng.range(100, 999),
        a = rng.below(255),
        b = rng.range(1, 254),
        id = rng.next(),
    );
    let mailer = *rng.pick(MAILERS);
    let eight_bit = rng.chance(50);
    let boundary = format!("----=_Part_{:016x}", rng.next());

    // Drop paragraphs until the message fits its drawn size (at least one stays).
    loop {
        let m = assemble_request(&Parts {
            from,
            to,
            message_id,
            name: &name,
            subject,
            date: &date,
            received: &received,
            mailer,
            opening,
            closing,
            paragraphs: &paragraphs,
            signature: &signature,
            shape,
            eight_bit,
            boundary: &boundary,
            attachment: attachment.as_ref(),
        });
        if m.len() <= target || paragraphs.len() == 1 {
            return (m.into_bytes(), shape);
        }
        paragraphs.pop();
    }
}

/// Everything drawn for one request.
struct Parts<'a> {
    from: &'a str,
    to: &'a str,
    message_id: &'a str,
    name: &'a str,
    subject: &'a str,
    date: &'a str,
    received: &'a str,
    mailer: &'a str,
    opening: &'a str,
    closing: &'a str,
    paragraphs: &'a [String],
    signature: &'a [String],
    shape: Shape,
    eight_bit: bool,
    boundary: &'a str,
    attachment: Option<&'a (&'a str, &'a str, Vec<u8>)>,
}

fn assemble_request(p: &Parts) -> String {
    let text = format!(
        "{}\n\n{}\n\n{}\n\n{}\n",
        p.opening,
        p.paragraphs
            .iter()
            .map(|x| wrap(x))
            .collect::<Vec<_>>()
            .join("\n\n"),
        p.closing,
        p.signature.join("\n")
    );
    let mut m = String::new();
    m.push_str(&format!("Return-Path: <{}>\r\n", p.from));
    m.push_str(p.received);
    m.push_str(&format!("From: {} <{}>\r\n", header_text(p.name), p.from));
    m.push_str(&format!("To: Mesa de Ayuda <{}>\r\n", p.to));
    m.push_str(&format!("Subject: {}\r\n", header_text(p.subject)));
    m.push_str(&format!("Date: {}\r\n", p.date));
    m.push_str(&format!("Message-ID: <{}>\r\n", p.message_id));
    m.push_str(p.mailer);
    m.push_str("\r\nContent-Language: es-MX\r\nMIME-Version: 1.0\r\n");
    let text_part = if p.eight_bit {
        format!(
            "Content-Type: text/plain; charset=UTF-8; format=flowed\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{}",
            text.replace('\n', "\r\n")
        )
    } else {
        format!(
            "Content-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n{}",
            quoted_printable(&text)
        )
    };
    let boundary = p.boundary;
    match p.shape {
        Shape::Plain => m.push_str(&text_part),
        Shape::Alternative => {
            let html = format!(
                "<html><head><meta http-equiv=\"Content-Type\" content=\"text/html; charset=utf-8\"></head>\n<body><div style=\"font-family:Calibri,Arial,sans-serif;font-size:11pt;color:#000000\">\n<p>{}</p>\n{}\n<p>{}</p>\n<p><b>{}</b><br>\n{}</p>\n</div></body></html>",
                html_escape(p.opening),
                p.paragraphs
                    .iter()
                    .map(|x| format!("<p>{}</p>", html_escape(x)))
                    .collect::<Vec<_>>()
                    .join("\n"),
                html_escape(p.closing),
                html_escape(p.name),
                p.signature[1..]
                    .iter()
                    .map(|s| html_escape(s))
                    .collect::<Vec<_>>()
                    .join("<br>\n"),
            );
            m.push_str(&format!(
                "Content-Type: multipart/alternative; boundary=\"{boundary}\"\r\n\r\n--{boundary}\r\n{text_part}\r\n--{boundary}\r\nContent-Type: text/html; charset=UTF-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n{}\r\n--{boundary}--\r\n",
                quoted_printable(&html)
            ));
        }
        Shape::Attachment => {
            let (file, ctype, data) = p.attachment.expect("attachment shape");
            m.push_str(&format!(
                "Content-Type: multipart/mixed; boundary=\"{boundary}\"\r\n\r\nThis is a multi-part message in MIME format.\r\n--{boundary}\r\n{text_part}\r\n--{boundary}\r\nContent-Type: {ctype}; name=\"{}\"\r\nContent-Disposition: attachment; filename=\"{}\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n--{boundary}--\r\n",
                header_text(file),
                file,
                base64_lines(data)
            ));
        }
    }
    m
}

/// Size and shape statistics of a generated set.
struct SetStats {
    n: usize,
    bytes: usize,
    min: usize,
    max: usize,
    plain: usize,
    alternative: usize,
    attachment: usize,
}

impl SetStats {
    fn of(set: &[(Vec<u8>, Shape)]) -> SetStats {
        SetStats {
            n: set.len(),
            bytes: set.iter().map(|m| m.0.len()).sum(),
            min: set.iter().map(|m| m.0.len()).min().unwrap_or(0),
            max: set.iter().map(|m| m.0.len()).max().unwrap_or(0),
            plain: set.iter().filter(|m| m.1 == Shape::Plain).count(),
            alternative: set.iter().filter(|m| m.1 == Shape::Alternative).count(),
            attachment: set.iter().filter(|m| m.1 == Shape::Attachment).count(),
        }
    }
    fn describe(&self) -> String {
        format!(
            "{} messages, {:.1} MB, {}–{} bytes (mean {}); {} text/plain, {} multipart/alternative (HTML), {} with an attachment",
            self.n,
            self.bytes as f64 / 1e6,
            self.min,
            self.max,
            self.bytes / self.n.max(1),
            self.plain,
            self.alternative,
            self.attachment
        )
    }
}

/// A local part prefix for a set of requesters, unique to this run (`bench-req-<pid>-…`).
fn requester_base(prefix: &str) -> String {
    unique(prefix).trim_end_matches("@example.test").to_string()
}

/// `n` requests from `senders` distinct addresses (round robin) to `to`.
fn requests(
    seed: u64,
    n: usize,
    sender_base: &str,
    senders: usize,
    to: &str,
) -> Vec<(Vec<u8>, Shape)> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|i| {
            let from = format!("{sender_base}-{}@example.test", i % senders);
            let id = format!(
                "{sender_base}.{i}.{:08x}@pc.example.test",
                rng.next() as u32
            );
            request(&mut rng, &from, to, &id)
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// MULTIAPPEND (RFC 3502) with LITERAL+ (RFC 7888) over a plain socket

struct RawImap {
    reader: BufReader<TcpStream>,
    writer: BufWriter<TcpStream>,
    tag: u32,
}

impl RawImap {
    fn connect(user: &str) -> RawImap {
        let stream = TcpStream::connect(("127.0.0.1", stack().imap_port)).expect("IMAP connect");
        stream.set_nodelay(true).expect("nodelay");
        stream
            .set_read_timeout(Some(Duration::from_secs(300)))
            .expect("timeout");
        let mut imap = RawImap {
            reader: BufReader::new(stream.try_clone().expect("clone socket")),
            writer: BufWriter::with_capacity(1 << 20, stream),
            tag: 0,
        };
        let greeting = imap.line();
        assert!(greeting.starts_with("* OK"), "IMAP greeting: {greeting}");
        imap.command(&format!("LOGIN \"{user}\" \"secret\""), false);
        let caps = imap.command("CAPABILITY", false).join(" ");
        for cap in ["MULTIAPPEND", "LITERAL+"] {
            assert!(caps.contains(cap), "the IMAP server lacks {cap}: {caps}");
        }
        imap
    }

    fn line(&mut self) -> String {
        let mut l = String::new();
        self.reader.read_line(&mut l).expect("IMAP read");
        assert!(!l.is_empty(), "IMAP server closed the connection");
        l.trim_end().to_string()
    }

    fn next_tag(&mut self) -> String {
        self.tag += 1;
        format!("b{}", self.tag)
    }

    /// Reads up to the tagged response of `tag`; returns every line. Panics unless OK (or NO
    /// when `no_ok`).
    fn finish(&mut self, tag: &str, what: &str, no_ok: bool) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let l = self.line();
            if let Some(status) = l.strip_prefix(&format!("{tag} ")) {
                assert!(
                    status.starts_with("OK") || (no_ok && status.starts_with("NO")),
                    "IMAP {what}: {l}"
                );
                lines.push(l);
                return lines;
            }
            lines.push(l);
        }
    }

    fn command(&mut self, command: &str, no_ok: bool) -> Vec<String> {
        let tag = self.next_tag();
        write!(self.writer, "{tag} {command}\r\n").expect("IMAP write");
        self.writer.flush().expect("IMAP write");
        let what = command.split(' ').next().unwrap_or(command).to_string();
        self.finish(&tag, &what, no_ok)
    }

    /// One APPEND command carrying every message as a non-synchronizing literal.
    fn multiappend<'a>(
        &mut self,
        folder: &str,
        flags: &str,
        messages: impl Iterator<Item = &'a [u8]>,
    ) {
        let tag = self.next_tag();
        write!(self.writer, "{tag} APPEND \"{folder}\"").expect("IMAP write");
        for m in messages {
            write!(self.writer, " {flags}{{{}+}}\r\n", m.len()).expect("IMAP write");
            self.writer.write_all(m).expect("IMAP write");
        }
        self.writer.write_all(b"\r\n").expect("IMAP write");
        self.writer.flush().expect("IMAP write");
        self.finish(&tag, "APPEND", false);
    }

    fn logout(mut self) {
        let _ = self.command("LOGOUT", false);
    }
}

/// Appends `messages` to `folder` of `user` in MULTIAPPEND commands of `chunk` messages each;
/// returns the elapsed time.
async fn multiappend(
    user: &str,
    folder: &str,
    flags: &str,
    create: bool,
    messages: Arc<Vec<(Vec<u8>, Shape)>>,
    chunk: usize,
) -> Duration {
    let (user, folder, flags) = (user.to_string(), folder.to_string(), flags.to_string());
    tokio::task::spawn_blocking(move || {
        let mut imap = RawImap::connect(&user);
        if create {
            imap.command(&format!("CREATE \"{folder}\""), true);
        }
        let started = Instant::now();
        for c in messages.chunks(chunk) {
            imap.multiappend(&folder, &flags, c.iter().map(|m| m.0.as_slice()));
        }
        let took = started.elapsed();
        imap.logout();
        took
    })
    .await
    .expect("MULTIAPPEND task")
}

// ---------------------------------------------------------------------------------------------
// Looking at folio from outside: /proc, its log, its database

/// The pid of the `folio` process started with `config` (its path is unique per test).
fn pid_of(config: &Path) -> u32 {
    *pids_of(config)
        .first()
        .unwrap_or_else(|| panic!("no folio process with --config {}", config.display()))
}

/// Machine-wide CPU ticks from /proc/stat: `(busy, total)` over all cores.
fn machine_ticks() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").expect("/proc/stat");
    let cpu = stat.lines().next().expect("cpu line");
    let v: Vec<u64> = cpu
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal ...
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    let total: u64 = v.iter().take(8).sum();
    (total - idle, total)
}

/// The machine's cores (the `cpuN` lines of /proc/stat): not `available_parallelism`, which
/// counts only the cores this process may run on (one under `scripts/bench --pin`).
fn machine_cores() -> usize {
    std::fs::read_to_string("/proc/stat")
        .map(|s| {
            s.lines()
                .filter(|l| {
                    l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit)
                })
                .count()
        })
        .unwrap_or(0)
}

/// The share of all cores that was busy between two [`machine_ticks`] readings.
fn busy_share(before: (u64, u64), after: (u64, u64)) -> f64 {
    let total = after.1.saturating_sub(before.1).max(1) as f64;
    after.0.saturating_sub(before.0) as f64 / total
}

fn clock_ticks() -> f64 {
    static TICKS: OnceLock<f64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// utime + stime of a process (all its threads), in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc/pid/stat");
    let after_name = &stat[stat.rfind(')').expect("stat format") + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Fields 14 and 15 of stat(5); `after_name` starts at field 3.
    let utime: f64 = fields[11].parse().expect("utime");
    let stime: f64 = fields[12].parse().expect("stime");
    (utime + stime) / clock_ticks()
}

/// A `Vm*` line of /proc/<pid>/status, in kB.
fn status_kb(pid: u32, key: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc/pid/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{key} missing from /proc/{pid}/status"))
}

/// CPU seconds of a process: `(user, system)`, all threads including exited ones.
fn cpu_split(pid: u32) -> (f64, f64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc/pid/stat");
    let after_name = &stat[stat.rfind(')').expect("stat format") + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let t = |i: usize| fields[i].parse::<f64>().expect("stat field") / clock_ticks();
    (t(11), t(12))
}

/// CPU seconds `(user, system)` per live thread, grouped by thread name without its number
/// (`tokio-runtime-worker`, `sqlx-sqlite-worker`, ...).
fn cpu_by_thread(pid: u32) -> std::collections::BTreeMap<String, (f64, f64)> {
    let mut out = std::collections::BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for task in tasks.flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        let name = comm
            .trim()
            .trim_end_matches(|c: char| c.is_ascii_digit())
            .trim_end_matches(['-', '_', ' '])
            .to_string();
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        let after_name = &stat[stat.rfind(')').expect("stat format") + 2..];
        let fields: Vec<&str> = after_name.split_whitespace().collect();
        let t = |i: usize| fields[i].parse::<f64>().unwrap_or(0.0) / clock_ticks();
        let e = out.entry(name).or_insert((0.0, 0.0));
        e.0 += t(11);
        e.1 += t(12);
    }
    out
}

/// One line per thread group: "name user+sys s".
fn describe_threads(
    threads: &std::collections::BTreeMap<String, (f64, f64)>,
    total: (f64, f64),
) -> String {
    let mut parts: Vec<String> = threads
        .iter()
        .map(|(name, (u, s))| format!("{name} {u:.2} user + {s:.2} sys"))
        .collect();
    let (u, s) = threads
        .values()
        .fold((0.0, 0.0), |a, (u, s)| (a.0 + u, a.1 + s));
    let (eu, es) = ((total.0 - u).max(0.0), (total.1 - s).max(0.0));
    if eu + es >= 0.01 {
        parts.push(format!("exited threads {eu:.2} user + {es:.2} sys"));
    }
    parts.join("; ")
}

fn mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

/// The timestamp at the start of a tracing text log line.
fn line_time(line: &str) -> Option<DateTime<Utc>> {
    let t = line.split_whitespace().next()?;
    DateTime::parse_from_rfc3339(t)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Timestamps of the log lines containing `needle`.
fn log_times(log: &str, needle: &str) -> Vec<DateTime<Utc>> {
    log.lines()
        .filter(|l| l.contains(needle))
        .filter_map(line_time)
        .collect()
}

/// Database timestamps ("2026-11-27T03:27:37.123Z").
fn db_time(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .unwrap_or_else(|e| panic!("timestamp {s:?}: {e}"))
        .with_timezone(&Utc)
}

fn db_path(folio: &Folio) -> PathBuf {
    folio.config.with_file_name("folio.db")
}

/// The database engine the benchmarks run on: PostgreSQL when `FOLIO_TEST_POSTGRES` is set
/// (`scripts/bench --postgres`), else SQLite. Printed with each result that depends on it.
fn engine() -> &'static str {
    if folio::store::scratch::on_postgres() {
        "PostgreSQL"
    } else {
        "SQLite"
    }
}

/// A connection to folio's database, whichever engine it is on (the URL the harness wrote into
/// folio's config: `folio::store::scratch::database_url` of its folder). On SQLite it is
/// read-only (WAL: reading never blocks folio's writes).
async fn open_db(folio: &Folio) -> AnyPool {
    sqlx::any::install_default_drivers();
    let dir = folio.config.parent().expect("config folder");
    let mut url = folio::store::scratch::database_url(dir);
    if url.starts_with("sqlite:") {
        url.push_str("?mode=ro");
    }
    AnyPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .unwrap_or_else(|e| panic!("open folio's database {url}: {e}"))
}

async fn count(db: &AnyPool, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(db)
        .await
        .expect("count query")
}

async fn text(db: &AnyPool, sql: &'static str) -> Option<String> {
    sqlx::query_scalar(sql)
        .fetch_one(db)
        .await
        .expect("text query")
}

/// CPU seconds the PostgreSQL server has spent so far: its postmaster (with the children it
/// reaped: `cutime` + `cstime`) and every live backend under it. The postmaster's pid comes from
/// `FOLIO_BENCH_PG_PID` (`scripts/bench --postgres` sets it); `None` without it.
fn postgres_cpu() -> Option<f64> {
    let master: u32 = std::env::var("FOLIO_BENCH_PG_PID")
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let stat = std::fs::read_to_string(format!("/proc/{master}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = after_name.split_whitespace().collect();
    let t = |i: usize| f[i].parse::<f64>().unwrap_or(0.0) / clock_ticks();
    // utime, stime, cutime, cstime: fields 14-17 of stat(5).
    let mut total = t(11) + t(12) + t(13) + t(14);
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if parent_of(pid) == Some(master) {
            total += cpu_seconds_or_zero(pid);
        }
    }
    Some(total)
}

/// [`cpu_seconds`] of a process that may exit while it is read.
fn cpu_seconds_or_zero(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let after_name = &stat[stat.rfind(')')? + 2..];
            let f: Vec<&str> = after_name.split_whitespace().collect();
            Some(
                (f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?) / clock_ticks(),
            )
        })
        .unwrap_or(0.0)
}

/// Files in Postfix's queue (mail accepted but not yet delivered to Dovecot).
fn postfix_queue_len() -> usize {
    fn walk(dir: &Path) -> usize {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return 0;
        };
        entries
            .flatten()
            .map(|e| match e.file_type() {
                Ok(t) if t.is_dir() => walk(&e.path()),
                Ok(_) => 1,
                Err(_) => 0,
            })
            .sum()
    }
    ["maildrop", "incoming", "active", "deferred", "hold"]
        .iter()
        .map(|q| walk(&stack().dir.join("queue").join(q)))
        .sum()
}

/// Waits until Postfix delivered everything it accepted (so a benchmark does not pay for the
/// previous one's deliveries); returns how long that took.
async fn drain_postfix(what: &str) -> f64 {
    let started = Instant::now();
    let before = postfix_queue_len();
    wait_for(
        &format!("Postfix's queue to drain ({what})"),
        Duration::from_secs(300),
        || async { (postfix_queue_len() == 0).then_some(()) },
    )
    .await;
    let took = started.elapsed().as_secs_f64();
    if before > 0 {
        info(format!(
            "Postfix delivered the {before} queued mail(s) of {what} to Dovecot in {took:.1} s"
        ));
    }
    took
}

/// Starts folio and returns (spawn → "mailbox ready", spawn → "folio started") from its log.
async fn timed_start(folio: &mut Folio) -> (DateTime<Utc>, f64, f64) {
    let spawned = Utc::now();
    folio.start(&[]).await;
    let log = folio.log_text();
    let ready = *log_times(&log, "mailbox ready").last().expect("ready line");
    let started = *log_times(&log, "folio started")
        .last()
        .expect("started line");
    (spawned, secs(ready - spawned), secs(started - spawned))
}

/// What a running folio holds and has spent once it has sat idle.
#[derive(Clone, Copy)]
struct Idle {
    rss_kb: u64,
    hwm_kb: u64,
    /// CPU since the process started (utime + stime, all threads).
    cpu_secs: f64,
}

/// Waits `settle` with folio idle (started, nothing to do), then reads its VmRSS, VmHWM and CPU
/// (benchmarks 4 and 7).
async fn idle_after(folio: &Folio, settle: Duration) -> Idle {
    tokio::time::sleep(settle).await;
    let pid = pid_of(&folio.config);
    Idle {
        rss_kb: status_kb(pid, "VmRSS"),
        hwm_kb: status_kb(pid, "VmHWM"),
        cpu_secs: cpu_seconds(pid),
    }
}

// ---------------------------------------------------------------------------------------------
// The 10k backlog run shared by benchmarks 1, 2 and 4

struct BacklogRun {
    append_secs: f64,
    first_ready_secs: f64,
    idle_rss_kb: u64,
    idle_cpu_secs: f64,
    /// Second start (with the backlog): spawn → "folio started" / "mailbox ready".
    started_secs: f64,
    ready_secs: f64,
    /// Spawn → the last message's ticket + queued confirmation committed.
    ingest_secs: f64,
    /// Spawn → the last confirmation accepted by Postfix.
    e2e_secs: f64,
    /// Share of the machine's cores busy (everything: folio, Dovecot, Postfix, the benchmark)
    /// during ingest and during the sending phase.
    busy_ingest: f64,
    busy_sending: f64,
    first_sent_secs: f64,
    sent_by_ingest_end: i64,
    batches: Vec<(usize, f64, DateTime<Utc>)>,
    cpu_ingest_secs: f64,
    cpu_total_secs: f64,
    cpu_ingest_split: (f64, f64),
    cpu_total_split: (f64, f64),
    threads_ingest: String,
    /// CPU seconds the PostgreSQL server spent during the start and ingest (`None` on SQLite,
    /// or when its pid is unknown).
    db_cpu_ingest: Option<f64>,
    threads_total: String,
    hwm_ingest_kb: u64,
    /// RssAnon / RssFile / RssShmem (kB) when every message was ticketed.
    rss_parts_ingest: (u64, u64, u64),
    /// (seconds since spawn, messages stored, VmRSS kB), every ~0.5 s during ingest.
    rss_timeline: Vec<(f64, i64, u64)>,
    peak_rss_kb: u64,
    /// One queued confirmation: (to, message_id, in_reply_to, references, context JSON).
    sample_outbox: (String, String, Option<String>, String, String),
    tickets: i64,
    quarantined: i64,
    failed: i64,
    requester_base: String,
}

static BACKLOG_RUN: OnceLock<Result<BacklogRun, String>> = OnceLock::new();

fn backlog_run() -> &'static BacklogRun {
    let run = BACKLOG_RUN.get_or_init(|| {
        std::panic::catch_unwind(|| runtime().block_on(run_backlog())).map_err(|e| {
            e.downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "panic".into())
        })
    });
    match run {
        Ok(r) => r,
        Err(e) => panic!("the 10k backlog run failed: {e}"),
    }
}

/// The `(messages in batch, pipeline ms, log time)` of each committed batch, from the
/// "processed" lines (one per message, logged after the batch's commit with the batch's time).
fn batches(log: &str) -> Vec<(usize, f64, DateTime<Utc>)> {
    let mut out: Vec<(usize, f64, DateTime<Utc>)> = Vec::new();
    let mut last_ms = String::new();
    for l in log.lines().filter(|l| l.contains(" processed ")) {
        let Some(ms_field) = l.split_whitespace().find_map(|w| w.strip_prefix("ms=")) else {
            continue;
        };
        let ms_field = ms_field.trim_matches('"').to_string();
        let Some(t) = line_time(l) else { continue };
        match out.last_mut() {
            Some(b) if ms_field == last_ms && (t - b.2).num_milliseconds().abs() < 50 => {
                b.0 += 1;
                b.2 = t;
            }
            _ => out.push((1, ms_field.parse().unwrap_or(f64::NAN), t)),
        }
        last_ms = ms_field;
    }
    out
}

async fn run_backlog() -> BacklogRun {
    let hd = unique("bench-hd");
    let requester_base = requester_base("bench-req");
    let mut folio = Folio::new(
        &hd,
        Options {
            max_auto_replies: 100_000,
            // Pinned, the mail servers have a core of their own, as on a site whose mail
            // servers are other machines: sending goes on beside the catch-up, what
            // `smtp.during_backlog = "auto"` picks for a remote server (for this loopback one
            // it picks "wait", right when the servers share folio's cores).
            during_backlog: pinned().then_some("send"),
            ..Options::default()
        },
    );
    if pinned() {
        info("pinned: smtp.during_backlog = \"send\" (mail servers on a core of their own)");
    }
    drain_postfix("earlier tests").await;

    // First start with an empty mailbox: records the baseline; idle figures.
    let (_, first_ready_secs, _) = timed_start(&mut folio).await;
    let idle = idle_after(&folio, Duration::from_secs(3)).await;
    let (idle_rss_kb, idle_cpu_secs) = (idle.rss_kb, idle.cpu_secs);
    info(format!(
        "first start (empty mailbox): ready {:.0} ms after spawn; settled after 3 s: VmRSS {:.1} MB, VmHWM {:.1} MB, CPU {:.2} s",
        first_ready_secs * 1000.0,
        mb(idle_rss_kb),
        mb(idle.hwm_kb),
        idle_cpu_secs
    ));
    assert!(folio.stop().success(), "folio exited with an error");

    // The backlog arrives while folio is down.
    let set = Arc::new(requests(1, BACKLOG, &requester_base, REQUESTERS, &hd));
    let stats = SetStats::of(&set).describe();
    info(format!("backlog: {stats}; from {REQUESTERS} requesters"));
    let append = multiappend(&hd, "INBOX", "", false, set.clone(), BACKLOG).await;
    drop(set);
    info(format!(
        "one MULTIAPPEND of {BACKLOG} messages into INBOX: {:.2} s ({:.0} msg/s)",
        append.as_secs_f64(),
        BACKLOG as f64 / append.as_secs_f64()
    ));
    let in_inbox = harness::count(&hd, "INBOX").await as usize;
    assert_eq!(in_inbox, BACKLOG, "INBOX after MULTIAPPEND");

    // Second start: the backlog.
    let db_cpu_before = postgres_cpu();
    let (spawned, ready_secs, started_secs) = timed_start(&mut folio).await;
    let pid = pid_of(&folio.config);
    let db = open_db(&folio).await;
    let n = BACKLOG as i64;
    let limit = Instant::now() + Duration::from_secs(240);
    let mut rss_timeline: Vec<(f64, i64, u64)> = Vec::new();
    let machine_at_start = machine_ticks();
    let (cpu_ingest_secs, sent_by_ingest_end) = loop {
        // The newest id, an index lookup: `count(*)` scans the table on PostgreSQL, and that
        // scan every poll would be the benchmark's load on the database, not folio's. The
        // exact counts run once the ids say the end may have come.
        let messages = count(&db, "SELECT coalesce(max(id), 0) FROM messages").await;
        let since = secs(Utc::now() - spawned);
        if rss_timeline.last().is_none_or(|l| since - l.0 >= 0.5) {
            rss_timeline.push((since, messages, status_kb(pid, "VmRSS")));
        }
        let quarantined = count(&db, "SELECT coalesce(max(id), 0) FROM quarantine").await;
        let (messages, queued, quarantined) = if messages + quarantined >= n {
            (
                count(&db, "SELECT count(*) FROM messages").await,
                count(&db, "SELECT count(*) FROM outbox").await,
                count(&db, "SELECT count(*) FROM quarantine").await,
            )
        } else {
            (messages, 0, quarantined)
        };
        if messages + quarantined >= n && queued + quarantined >= n {
            let cpu = cpu_seconds(pid);
            let sent = count(&db, "SELECT count(*) FROM outbox WHERE status = 'sent'").await;
            break (cpu, sent);
        }
        assert!(
            Instant::now() < limit,
            "ingest incomplete after 240 s: {messages} messages, {queued} queued"
        );
        tokio::time::sleep(POLL).await;
    };
    let machine_at_ingest_end = machine_ticks();
    let db_cpu_ingest = postgres_cpu().zip(db_cpu_before).map(|(a, b)| a - b);
    report_affinity("at the end of ingest (folio sending)", Some(pid));
    let cpu_ingest_split = cpu_split(pid);
    let threads_ingest = describe_threads(&cpu_by_thread(pid), cpu_ingest_split);
    let hwm_ingest_kb = status_kb(pid, "VmHWM");
    let rss_parts_ingest = (
        status_kb(pid, "RssAnon"),
        status_kb(pid, "RssFile"),
        status_kb(pid, "RssShmem"),
    );
    let (cpu_total_secs, peak_rss_kb) = loop {
        // Through the `outbox_due (status, …)` index, not a scan of the whole outbox.
        let pending = count(&db, "SELECT count(*) FROM outbox WHERE status = 'pending'").await;
        if pending == 0 {
            break (cpu_seconds(pid), status_kb(pid, "VmHWM"));
        }
        assert!(
            Instant::now() < limit,
            "sending incomplete after 240 s: {pending} pending"
        );
        tokio::time::sleep(POLL).await;
    };

    let machine_at_end = machine_ticks();
    let cpu_total_split = cpu_split(pid);
    let threads_total = describe_threads(&cpu_by_thread(pid), cpu_total_split);
    let log = folio.log_text();
    let processed = log_times(&log, " processed ");
    let last_commit = *processed.last().expect("processed lines");
    let first_sent = db_time(
        &text(&db, "SELECT min(sent_at) FROM outbox WHERE status = 'sent'")
            .await
            .expect("a sent mail"),
    );
    let last_sent = db_time(
        &text(&db, "SELECT max(sent_at) FROM outbox WHERE status = 'sent'")
            .await
            .expect("a sent mail"),
    );
    let sample_outbox: (String, String, Option<String>, String, String) = sqlx::query_as(
        "SELECT to_address, message_id, in_reply_to, references_list, context FROM outbox
         ORDER BY id LIMIT 1",
    )
    .fetch_one(&db)
    .await
    .expect("an outbox row");
    let tickets = count(&db, "SELECT count(*) FROM tickets").await;
    let quarantined = count(&db, "SELECT count(*) FROM quarantine").await;
    let failed = count(&db, "SELECT count(*) FROM outbox WHERE status = 'failed'").await;
    let warnings = log
        .lines()
        .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
        .take(5)
        .collect::<Vec<_>>();
    if !warnings.is_empty() {
        info(format!(
            "folio logged warnings/errors, e.g.:\n{}",
            warnings.join("\n")
        ));
    }
    db.close().await;
    assert!(folio.stop().success(), "folio exited with an error");

    BacklogRun {
        append_secs: append.as_secs_f64(),
        first_ready_secs,
        idle_rss_kb,
        idle_cpu_secs,
        started_secs,
        ready_secs,
        ingest_secs: secs(last_commit - spawned),
        e2e_secs: secs(last_sent - spawned),
        busy_ingest: busy_share(machine_at_start, machine_at_ingest_end),
        busy_sending: busy_share(machine_at_ingest_end, machine_at_end),
        first_sent_secs: secs(first_sent - spawned),
        sent_by_ingest_end,
        batches: batches(&log),
        cpu_ingest_secs,
        cpu_total_secs,
        cpu_ingest_split,
        cpu_total_split,
        threads_ingest,
        db_cpu_ingest,
        threads_total,
        hwm_ingest_kb,
        rss_parts_ingest,
        rss_timeline,
        peak_rss_kb,
        sample_outbox,
        tickets,
        quarantined,
        failed,
        requester_base,
    }
}

// ---------------------------------------------------------------------------------------------
// 1. Ingest

#[test]
#[ignore = "benchmark: run with scripts/bench"]
fn bench_1_ingest() {
    println!("\n=== 1. ingest: {BACKLOG} backlog messages → tickets + queued confirmations ===");
    let r = backlog_run();
    info(format!(
        "spawn → \"folio started\" (config, database open + migrations) {:.0} ms; → \"mailbox ready\" (IMAP login, LIST, SELECT) {:.0} ms",
        r.started_secs * 1000.0,
        r.ready_secs * 1000.0
    ));
    let total_batch_ms: f64 = r.batches.iter().map(|b| b.1).sum();
    let mean = total_batch_ms / r.batches.len().max(1) as f64;
    let max = r.batches.iter().map(|b| b.1).fold(0.0, f64::max);
    let after_ready = r.ingest_secs - r.ready_secs;
    info(format!(
        "{} batches (imap.batch_size 500); each batch from the start of its analyses to its commit: mean {mean:.0} ms, max {max:.0} ms; sum {:.2} s over the {:.2} s from ready to the last commit ({:.0} %: batches overlap, the next one fetched and analysed while one is stored)",
        r.batches.len(),
        total_batch_ms / 1000.0,
        after_ready,
        100.0 * total_batch_ms / 1000.0 / after_ready
    ));
    if let Some(db_cpu) = r.db_cpu_ingest {
        info(format!(
            "CPU during start + ingest: folio {:.2} s ({:.3} ms/message), the PostgreSQL server {db_cpu:.2} s ({:.3} ms/message); wall time {:.2} s on {} cores",
            r.cpu_ingest_secs,
            1000.0 * r.cpu_ingest_secs / BACKLOG as f64,
            1000.0 * db_cpu / BACKLOG as f64,
            r.ingest_secs,
            machine_cores()
        ));
    }
    info(format!(
        "confirmations already accepted by SMTP when ingest finished: {} of {BACKLOG}",
        r.sent_by_ingest_end
    ));
    // The pure part alone, in this process on one thread: how much of the budget parsing takes.
    let base = r.requester_base.clone();
    let set = requests(1, BACKLOG, &base, REQUESTERS, "bench-hd@example.test");
    let policy = folio::desk::policy::Policy::with_defaults(
        "bench-hd@example.test",
        folio::desk::tokens::Tokens::new(b"bench".to_vec()),
    );
    let directory = folio::desk::requester::Directory::default();
    let started = Instant::now();
    for (raw, _) in &set {
        let a =
            folio::desk::analysis::analyze(raw, &directory, &policy, 10 << 20).expect("analyze");
        assert!(!a.verdict.is_automatic());
    }
    let analyze_secs = started.elapsed().as_secs_f64();
    info(format!(
        "analysis::analyze alone (MIME parse, HTML→text, classify, requester, folio search) in the benchmark process, one thread: {:.2} s for {BACKLOG} = {:.0} µs/message",
        analyze_secs,
        analyze_secs / BACKLOG as f64 * 1e6
    ));
    assert_eq!(
        r.tickets as usize, BACKLOG,
        "every message must open a ticket"
    );
    assert_eq!(r.quarantined, 0, "no generated message may be quarantined");
    let rate = BACKLOG as f64 / r.ingest_secs;
    result(
        "1 ingest",
        "start → all 10k ticketed + confirmation queued",
        format!("{:.2} s = {rate:.0} msg/s", r.ingest_secs),
        "≥ 3000 msg/s",
        Some(rate >= 3000.0),
    );
    result(
        "1 ingest",
        "same, counted from \"mailbox ready\"",
        format!("{:.0} msg/s", BACKLOG as f64 / after_ready),
        "(info)",
        None,
    );
}

// ---------------------------------------------------------------------------------------------
// 2. End to end, next to Postfix's own ceiling

/// Sends `n` copies of `sample` (fresh Message-IDs) over `SMTP_CONCURRENCY` connections with a
/// minimal client (lettre's `AsyncSmtpConnection` on `TCP_NODELAY` sockets, one per task);
/// returns the elapsed seconds and the CPU seconds this process spent sending (the SMTP
/// conversation alone: the floor of what any lettre-based sender pays per mail).
async fn smtp_ceiling(sample: &[u8], n: usize, from: &str, recipients: &[String]) -> (f64, f64) {
    let mails: Arc<Vec<Vec<u8>>> = Arc::new(
        (0..n)
            .map(|i| {
                harness::with_header(
                    sample,
                    "Message-ID",
                    &format!("<ceiling.{i}.{:x}@example.test>", std::process::id()),
                )
            })
            .collect(),
    );
    // Mail i goes to recipients[i % len]: the delivery work behind the SMTP server's
    // acceptance (Dovecot's LMTP into each mailbox) depends on how many mailboxes there are.
    let envelopes: Arc<Vec<Envelope>> = Arc::new(
        recipients
            .iter()
            .map(|to| {
                Envelope::new(
                    Some(from.parse().expect("from")),
                    vec![to.parse().expect("to")],
                )
                .expect("envelope")
            })
            .collect(),
    );
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let cpu_before = cpu_seconds(std::process::id());
    let machine_before = machine_ticks();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..SMTP_CONCURRENCY {
        let (mails, next, envelopes) = (mails.clone(), next.clone(), envelopes.clone());
        tasks.spawn(async move {
            let tcp = tokio::net::TcpStream::connect(("127.0.0.1", stack().smtp_port))
                .await
                .expect("SMTP connect");
            tcp.set_nodelay(true).expect("TCP_NODELAY");
            let mut conn = AsyncSmtpConnection::connect_with_transport(
                Box::new(tcp),
                &ClientId::Domain("bench.example.test".into()),
            )
            .await
            .expect("SMTP greeting and EHLO");
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= mails.len() {
                    break;
                }
                conn.send(&envelopes[i % envelopes.len()], &mails[i])
                    .await
                    .expect("Postfix accepts the mail");
            }
            let _ = conn.quit().await;
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.expect("sender task");
    }
    report_affinity("right after the ceiling client sent", None);
    let busy = busy_share(machine_before, machine_ticks());
    info(format!(
        "while the ceiling client sent, {:.0} % of the machine's {} cores was busy",
        100.0 * busy,
        machine_cores()
    ));
    (
        started.elapsed().as_secs_f64(),
        cpu_seconds(std::process::id()) - cpu_before,
    )
}

#[test]
#[ignore = "benchmark: run with scripts/bench"]
fn bench_2_end_to_end() {
    println!("\n=== 2. end to end: {BACKLOG} confirmations accepted by Postfix vs. Postfix's ceiling ===");
    let r = backlog_run();
    runtime().block_on(async {
        drain_postfix("folio's 10k confirmations").await;
        // A real confirmation from the run, as the ceiling client's payload.
        let first_requester = format!("{}-0@example.test", r.requester_base);
        let sample = harness::fetch_all(&first_requester, "INBOX")
            .await
            .into_iter()
            .next()
            .expect("a confirmation in the first requester's INBOX");
        // Postfix added Return-Path and Delivered-To/Received on delivery: strip what a client
        // would not send.
        let text = String::from_utf8_lossy(&sample).into_owned();
        let body_start = text.find("\r\n\r\n").unwrap_or(0);
        let headers: Vec<&str> = text[..body_start]
            .split("\r\n")
            .collect::<Vec<_>>();
        let mut kept = String::new();
        let mut skip = false;
        for h in headers {
            let cont = h.starts_with(' ') || h.starts_with('\t');
            if !cont {
                let lower = h.to_lowercase();
                skip = ["return-path:", "delivered-to:", "received:"]
                    .iter()
                    .any(|p| lower.starts_with(p));
            }
            if !skip {
                kept.push_str(h);
                kept.push_str("\r\n");
            }
        }
        kept.push_str(&text[body_start + 2..]);
        let sample = kept.into_bytes();
        info(format!(
            "ceiling client: {BACKLOG} copies of one of folio's confirmations ({} bytes) to the same {REQUESTERS} recipients folio's confirmations went to, over {SMTP_CONCURRENCY} connections, lettre AsyncSmtpConnection on TCP_NODELAY sockets",
            sample.len()
        ));
        let hd = unique("bench-ceil-from");
        let recipients: Vec<String> = (0..REQUESTERS)
            .map(|k| format!("{}-{k}@example.test", r.requester_base))
            .collect();
        let (ceiling_secs, ceiling_cpu) = smtp_ceiling(&sample, BACKLOG, &hd, &recipients).await;
        let ceiling = BACKLOG as f64 / ceiling_secs;
        drain_postfix("the ceiling client's mail").await;
        // The same to a single mailbox, as earlier versions of this benchmark measured it: the
        // delivery behind acceptance is cheaper, so this ceiling is higher.
        let one = vec![unique("bench-ceil")];
        let (single_secs, _) = smtp_ceiling(&sample, BACKLOG, &hd, &one).await;
        drain_postfix("the single-recipient ceiling's mail").await;

        let e2e = BACKLOG as f64 / r.e2e_secs;
        let send_phase = r.e2e_secs - r.first_sent_secs;
        info(format!(
            "folio: first confirmation accepted {:.2} s after spawn, last {:.2} s after spawn; sending phase {:.2} s = {:.0} msg/s; failed {}",
            r.first_sent_secs,
            r.e2e_secs,
            send_phase,
            BACKLOG as f64 / send_phase,
            r.failed
        ));
        assert_eq!(r.failed, 0, "no confirmation may fail");
        info(format!(
            "machine busy during folio's ingest: {:.0} %; during its sending phase: {:.0} %",
            100.0 * r.busy_ingest,
            100.0 * r.busy_sending
        ));
        result(
            "2 end to end",
            "Postfix ceiling (minimal lettre client, TCP_NODELAY, 4 connections, same mail, same 1000 recipients)",
            format!("{ceiling_secs:.2} s = {ceiling:.0} msg/s"),
            "(reference)",
            None,
        );
        result(
            "2 end to end",
            "the same to one recipient (cheaper delivery behind acceptance)",
            format!(
                "{single_secs:.2} s = {:.0} msg/s",
                BACKLOG as f64 / single_secs
            ),
            "(info)",
            None,
        );
        result(
            "2 end to end",
            "ceiling client's CPU per mail (the SMTP conversation alone)",
            format!("{:.3} ms", 1000.0 * ceiling_cpu / BACKLOG as f64),
            "(reference)",
            None,
        );
        result(
            "2 end to end",
            "start → all 10k confirmations accepted",
            format!("{:.2} s = {e2e:.0} msg/s", r.e2e_secs),
            "(info)",
            None,
        );
        result(
            "2 end to end",
            "folio CPU per message (whole run: ingest + sending, start-up excluded)",
            format!(
                "{:.3} ms",
                1000.0 * (r.cpu_total_secs - r.idle_cpu_secs) / BACKLOG as f64
            ),
            "(info)",
            None,
        );
        let pct = 100.0 * e2e / ceiling;
        result(
            "2 end to end",
            "folio end-to-end rate (ingest included) / ceiling",
            format!("{pct:.0} %"),
            "≥ 90 %",
            Some(pct >= 90.0),
        );
        let send_pct = 100.0 * (BACKLOG as f64 / send_phase) / ceiling;
        result(
            "2 end to end",
            "sending phase only (first → last accepted) / ceiling",
            format!("{send_pct:.0} %"),
            "≥ 90 %",
            Some(send_pct >= 90.0),
        );
    });
}

// ---------------------------------------------------------------------------------------------
// 3. Latency

struct Sample {
    /// Postfix accepted our request → Postfix accepted folio's confirmation.
    total_ms: f64,
    /// Postfix accepted our request → folio's IDLE woke up (messages.seen_at).
    wake_ms: f64,
    /// seen_at → confirmation accepted (outbox.sent_at): folio's own share.
    folio_ms: f64,
}

/// Sends one request over SMTP and waits for its confirmation to be accepted; `None` after
/// `limit`.
async fn one_request(
    db: &AnyPool,
    rng: &mut Rng,
    from: &str,
    hd: &str,
    limit: Duration,
) -> Option<Sample> {
    let id = format!(
        "{}@pc.example.test",
        unique("bench-lat-msg").replace('@', ".")
    );
    let (raw, _) = request(rng, from, hd, &id);
    harness::send(from, hd, &raw).await;
    let accepted = Utc::now();
    let deadline = Instant::now() + limit;
    let key = format!("mid:{id}");
    loop {
        let row: Option<(String, String)> = sqlx::query_as(
            "SELECT m.seen_at, o.sent_at FROM messages m JOIN outbox o ON o.ticket_id = m.ticket_id
             WHERE m.dedup_key = $1 AND o.status = 'sent'",
        )
        .bind(&key)
        .fetch_optional(db)
        .await
        .expect("latency query");
        if let Some((seen, sent)) = row {
            let (seen, sent) = (db_time(&seen), db_time(&sent));
            return Some(Sample {
                total_ms: ms(sent - accepted),
                wake_ms: ms(seen - accepted),
                folio_ms: ms(sent - seen),
            });
        }
        if Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

fn spread(name: &str, mut xs: Vec<f64>) -> (f64, f64) {
    xs.sort_by(f64::total_cmp);
    let (p50, p90, p99) = (
        percentile(&xs, 50.0),
        percentile(&xs, 90.0),
        percentile(&xs, 99.0),
    );
    info(format!(
        "{name}: min {:.0} / p50 {p50:.0} / p90 {p90:.0} / p99 {p99:.0} / max {:.0} ms",
        xs.first().copied().unwrap_or(f64::NAN),
        xs.last().copied().unwrap_or(f64::NAN)
    ));
    (p50, p99)
}

#[test]
#[ignore = "benchmark: run with scripts/bench"]
fn bench_3_latency() {
    println!("\n=== 3. latency: {LATENCY_SAMPLES} single requests over SMTP while folio waits in IDLE ===");
    runtime().block_on(async {
        drain_postfix("earlier benchmarks").await;
        let hd = unique("bench-lat-hd");
        let base = requester_base("bench-lat-req");
        let mut folio = Folio::new(
            &hd,
            Options {
                max_auto_replies: 100_000,
                ..Options::default()
            },
        );
        folio.start(&[]).await;
        let db = open_db(&folio).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let mut rng = Rng::new(3);
        let mut samples = Vec::new();
        let mut stalled = 0;
        for i in 0..LATENCY_SAMPLES {
            let from = format!("{base}-{}@example.test", i % 5);
            match one_request(&db, &mut rng, &from, &hd, Duration::from_secs(10)).await {
                Some(s) => samples.push(s),
                None => stalled += 1,
            }
        }
        db.close().await;
        assert!(folio.stop().success(), "folio exited with an error");
        info(format!(
            "{} of {LATENCY_SAMPLES} confirmed within 10 s{}",
            samples.len(),
            if stalled > 0 {
                format!("; {stalled} NOT confirmed within 10 s (folio missed the IDLE wake-up?)")
            } else {
                String::new()
            }
        ));
        info("p99 of 50 samples is the largest sample (nearest rank)");
        let (t50, t99) = spread(
            "SMTP accepted request → SMTP accepted confirmation",
            samples.iter().map(|s| s.total_ms).collect(),
        );
        spread(
            "SMTP accepted request → folio's IDLE woke (Dovecot's ~500 ms notify delay)",
            samples.iter().map(|s| s.wake_ms).collect(),
        );
        let (f50, f99) = spread(
            "folio's share: IDLE woke (seen_at) → confirmation accepted (sent_at)",
            samples.iter().map(|s| s.folio_ms).collect(),
        );
        result(
            "3 latency",
            "request → confirmation accepted, p50 / p99",
            format!("{t50:.0} / {t99:.0} ms"),
            "(info; includes Dovecot's 500 ms)",
            None,
        );
        result(
            "3 latency",
            "folio's share p50",
            format!("{f50:.0} ms"),
            "≤ 50 ms",
            Some(f50 <= 50.0 && stalled == 0),
        );
        result(
            "3 latency",
            "folio's share p99",
            format!("{f99:.0} ms"),
            "≤ 200 ms",
            Some(f99 <= 200.0 && stalled == 0),
        );
        if stalled > 0 {
            result(
                "3 latency",
                "requests not confirmed within 10 s",
                format!("{stalled}"),
                "0",
                Some(false),
            );
        }
    });
}

// ---------------------------------------------------------------------------------------------
// 4. CPU and memory

#[test]
#[ignore = "benchmark: run with scripts/bench"]
fn bench_4_cpu_and_memory() {
    println!("\n=== 4. CPU and memory of the folio process ===");
    let r = backlog_run();
    info(format!(
        "CPU (utime + stime, all threads, from process start): {:.2} s when every message was ticketed, {:.2} s when every confirmation was accepted; {:.2} s of it is start-up (measured on the empty-mailbox start)",
        r.cpu_ingest_secs, r.cpu_total_secs, r.idle_cpu_secs
    ));
    info(format!(
        "CPU user / system: ingest {:.2} / {:.2} s; whole run {:.2} / {:.2} s",
        r.cpu_ingest_split.0, r.cpu_ingest_split.1, r.cpu_total_split.0, r.cpu_total_split.1
    ));
    info(format!(
        "CPU by thread at the end of ingest: {}",
        r.threads_ingest
    ));
    info(format!(
        "CPU by thread at the end of sending: {}",
        r.threads_total
    ));
    info(format!(
        "VmHWM when every message was ticketed: {:.1} MB; when every confirmation was accepted: {:.1} MB",
        mb(r.hwm_ingest_kb),
        mb(r.peak_rss_kb)
    ));
    info(format!(
        "at the end of ingest: RssAnon {:.1} MB, RssFile {:.1} MB, RssShmem {:.1} MB",
        mb(r.rss_parts_ingest.0),
        mb(r.rss_parts_ingest.1),
        mb(r.rss_parts_ingest.2)
    ));
    info(format!(
        "VmRSS during ingest (s after spawn: messages stored → MB): {}",
        r.rss_timeline
            .iter()
            .map(|(t, n, kb)| format!("{t:.1}: {n} → {:.0}", mb(*kb)))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    // What preparing one confirmation costs without any I/O: render the three templates and
    // build + format the MIME message, as folio's sender does for each mail.
    let (to, message_id, in_reply_to, references, context) = &r.sample_outbox;
    let context: serde_json::Value = serde_json::from_str(context).expect("outbox context");
    let templates = folio::outbound::render::Templates::new(
        PathBuf::from(harness::REPO).join("mail-templates"),
    );
    let addressing = folio::outbound::outgoing::Addressing {
        from_name: "Mesa de Ayuda".into(),
        from_address: "bench-hd@example.test".into(),
        to: to.clone(),
        reply_to: None,
        message_id: message_id.clone(),
        in_reply_to: in_reply_to.clone(),
        references: references.split_whitespace().map(str::to_string).collect(),
        auto_submitted: "auto-replied",
        date: Utc::now(),
    };
    let started = Instant::now();
    let mut bytes = 0;
    for _ in 0..BACKLOG {
        let rendered = templates
            .render("es", "confirmation", &context)
            .expect("render");
        let message = folio::outbound::outgoing::build(&addressing, &rendered, &[]).expect("build");
        bytes += message.formatted().len();
    }
    let prepare = started.elapsed().as_secs_f64();
    info(format!(
        "render + build + format one confirmation ({} bytes), in the benchmark process, one thread: {:.0} µs/message",
        bytes / BACKLOG,
        prepare / BACKLOG as f64 * 1e6
    ));
    let per_msg = r.cpu_total_secs / BACKLOG as f64 * 1000.0;
    result(
        "4 cpu/memory",
        "CPU per message (ingest + send, whole process)",
        format!("{per_msg:.3} ms"),
        "≤ 0.2 ms",
        Some(per_msg <= 0.2),
    );
    result(
        "4 cpu/memory",
        "of which ingest (fetch, parse, store), per message",
        format!("{:.3} ms", r.cpu_ingest_secs / BACKLOG as f64 * 1000.0),
        "(info)",
        None,
    );
    result(
        "4 cpu/memory",
        "peak RSS (VmHWM) at the 10k backlog",
        format!("{:.1} MB", mb(r.peak_rss_kb)),
        "≤ 60 MB",
        Some(mb(r.peak_rss_kb) <= 60.0),
    );
    result(
        "4 cpu/memory",
        "idle RSS (VmRSS, empty mailbox, 3 s after ready)",
        format!("{:.1} MB", mb(r.idle_rss_kb)),
        "≤ 20 MB",
        Some(mb(r.idle_rss_kb) <= 20.0),
    );
    info(format!(
        "for reference: the empty-mailbox start was ready {:.0} ms after spawn; the MULTIAPPEND of the backlog took {:.2} s",
        r.first_ready_secs * 1000.0,
        r.append_secs
    ));
}

// ---------------------------------------------------------------------------------------------
// 5. A big processed folder

#[test]
#[ignore = "benchmark: run with scripts/bench"]
fn bench_5_big_processed_folder() {
    println!("\n=== 5. start-up with {PROCESSED} messages already in Procesados ===");
    runtime().block_on(async {
        drain_postfix("earlier benchmarks").await;
        let hd = unique("bench-big-hd");
        let base = requester_base("bench-big-req");
        let chunk = 10_000;
        let mut append = Duration::ZERO;
        let mut bytes = 0;
        for c in 0..PROCESSED / chunk {
            let set = Arc::new(requests(100 + c as u64, chunk, &base, REQUESTERS, &hd));
            bytes += set.iter().map(|m| m.0.len()).sum::<usize>();
            append += multiappend(&hd, "Procesados", "(\\Seen) ", c == 0, set, chunk).await;
        }
        let in_folder = harness::count(&hd, "Procesados").await as usize;
        assert_eq!(in_folder, PROCESSED, "Procesados after MULTIAPPEND");
        info(format!(
            "{PROCESSED} messages ({:.0} MB) appended to Procesados in {} MULTIAPPEND commands: {:.1} s",
            bytes as f64 / 1e6,
            PROCESSED / chunk,
            append.as_secs_f64()
        ));

        let mut folio = Folio::new(
            &hd,
            Options {
                max_auto_replies: 100_000,
                ..Options::default()
            },
        );
        let mut rng = Rng::new(5);
        let from = format!("{base}-x@example.test");
        let mut readies = Vec::new();
        for start in ["first start", "restart"] {
            if start == "restart" {
                assert!(folio.stop().success(), "folio exited with an error");
            }
            let (_, ready, started) = timed_start(&mut folio).await;
            readies.push(ready);
            let db = open_db(&folio).await;
            tokio::time::sleep(Duration::from_millis(500)).await;
            let s = one_request(&db, &mut rng, &from, &hd, Duration::from_secs(20)).await;
            db.close().await;
            info(format!(
                "{start}: spawn → \"folio started\" {:.0} ms, → \"mailbox ready\" {:.0} ms",
                started * 1000.0,
                ready * 1000.0
            ));
            match s {
                Some(s) => result(
                    "5 big Procesados",
                    &format!("{start}: one new request → confirmation accepted (folio's share)"),
                    format!("{:.0} ms ({:.0} ms)", s.total_ms, s.folio_ms),
                    "(info)",
                    None,
                ),
                None => result(
                    "5 big Procesados",
                    &format!("{start}: one new request → confirmation accepted"),
                    "not within 20 s".into(),
                    "(info)",
                    Some(false),
                ),
            }
        }
        assert!(folio.stop().success(), "folio exited with an error");
        for (start, ready) in ["first start", "restart"].iter().zip(&readies) {
            result(
                "5 big Procesados",
                &format!("{start}: spawn → \"mailbox ready\" with 100k in Procesados"),
                format!("{:.0} ms", ready * 1000.0),
                "≤ 2000 ms",
                Some(*ready <= 2.0),
            );
        }
    });
}

// ---------------------------------------------------------------------------------------------
// Not a benchmark: the generated mail is what the benchmarks claim it is (runs in `cargo test`).

// ---------------------------------------------------------------------------------------------
// 6. A poison mail among normal ones

/// Normal requests of benchmark 6.
const POISON_NORMALS: usize = 1_000;

/// An HTML-only mail of about `kb` KB of nested `<div>`s: the shape that made html2text
/// quadratic (a 480 KB one held the daemon 44 s before the hardening issue).
fn poison_mail(from: &str, to: &str, message_id: &str, kb: usize) -> Vec<u8> {
    let depth = kb * 1024 / "<div></div>".len();
    let html = format!(
        "<html><body>{}Se cayó el sistema de nómina{}</body></html>",
        "<div>".repeat(depth),
        "</div>".repeat(depth)
    );
    format!(
        "From: {from}\r\nTo: {to}\r\nSubject: Urgente\r\nDate: Fri, 27 Nov 2026 10:00:00 -0600\r\n\
         Message-ID: <{message_id}>\r\nMIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\
         Content-Transfer-Encoding: 8bit\r\n\r\n{html}\r\n"
    )
    .into_bytes()
}

/// Sends `POISON_NORMALS` normal requests over SMTP at a steady 50 per second (with a poison
/// mail in the middle when `poison_kb` is set) and returns each normal request's share of
/// folio: from when folio saw it (`messages.seen_at`) to when Postfix accepted its confirmation
/// (`outbox.sent_at`), in ms. Also returns how the poison mail ended.
async fn poison_run(label: &str, poison_kb: Option<usize>) -> (Vec<f64>, String) {
    let hd = unique(&format!("bench-poison-{label}-hd"));
    let base = requester_base(&format!("bench-poison-{label}-req"));
    let mut folio = Folio::new(
        &hd,
        Options {
            max_auto_replies: 100_000,
            ..Options::default()
        },
    );
    folio.start(&[]).await;
    let db = open_db(&folio).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let normals = requests(6, POISON_NORMALS, &base, 100, &hd);
    let poison_id = format!("{}.poison@pc.example.test", base.replace('@', "."));
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    for (i, (raw, _)) in normals.iter().enumerate() {
        tick.tick().await;
        if i == POISON_NORMALS / 10 {
            if let Some(kb) = poison_kb {
                let from = format!("{base}-poison@example.test");
                harness::send(&from, &hd, &poison_mail(&from, &hd, &poison_id, kb)).await;
            }
        }
        let from = format!("{base}-{}@example.test", i % 100);
        harness::send(&from, &hd, raw).await;
    }
    let poison_key = format!("mid:{poison_id}");
    wait_for(
        "every normal request confirmed",
        Duration::from_secs(300),
        || async {
            let n: i64 = sqlx::query_scalar(
                "SELECT count(DISTINCT m.id) FROM messages m JOIN outbox o ON o.ticket_id = m.ticket_id
                 WHERE o.template = 'confirmation' AND o.status = 'sent' AND m.dedup_key <> ?",
            )
            .bind(&poison_key)
            .fetch_one(&db)
            .await
            .expect("count");
            (n as usize >= POISON_NORMALS).then_some(())
        },
    )
    .await;
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT m.seen_at, min(o.sent_at) FROM messages m JOIN outbox o ON o.ticket_id = m.ticket_id
         WHERE o.template = 'confirmation' AND o.status = 'sent' AND m.dedup_key <> ?
         GROUP BY m.id",
    )
    .bind(&poison_key)
    .fetch_all(&db)
    .await
    .expect("shares");
    let shares = rows
        .iter()
        .map(|(seen, sent)| ms(db_time(sent) - db_time(seen)))
        .collect();
    let poison = if poison_kb.is_some() {
        let quarantined: Option<String> =
            sqlx::query_scalar("SELECT reason FROM quarantine ORDER BY id DESC LIMIT 1")
                .fetch_optional(&db)
                .await
                .expect("quarantine");
        let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM messages WHERE dedup_key = $1")
            .bind(format!("mid:{poison_id}"))
            .fetch_one(&db)
            .await
            .expect("poison");
        match (stored, quarantined) {
            (1, _) => "stored with a ticket".to_string(),
            (_, Some(reason)) => format!("quarantined: {reason}"),
            _ => "neither stored nor quarantined yet".to_string(),
        }
    } else {
        String::new()
    };
    db.close().await;
    assert!(folio.stop().success(), "folio exited with an error");
    (shares, poison)
}

#[test]
#[ignore = "benchmark: run with scripts/bench"]
fn bench_6_poison_mail() {
    println!("\n=== 6. a poison mail among {POISON_NORMALS} normal requests (50/s over SMTP) ===");
    runtime().block_on(async {
        drain_postfix("earlier benchmarks").await;
        let (clean, _) = poison_run("clean", None).await;
        let (c50, c99) = spread(
            "without poison: folio's share (seen → confirmation accepted)",
            clean,
        );
        drain_postfix("the clean run").await;
        // The issue's sample (480 KB of nested <div>), then the worst the default limits allow
        // the same shape to reach in one mail (20 MB).
        for kb in [480, 20 * 1024] {
            let (shares, poison) = poison_run(&format!("{kb}k"), Some(kb)).await;
            let n = shares.len();
            let (p50, p99) = spread(
                &format!("with a {kb} KB poison: folio's share (seen → confirmation accepted)"),
                shares,
            );
            info(format!("the poison mail: {poison}"));
            result(
                "6 poison mail",
                &format!("{kb} KB nested HTML: normal requests' share p50 / p99 ({n} confirmed)"),
                format!("{p50:.0} / {p99:.0} ms (clean run {c50:.0} / {c99:.0} ms)"),
                "p99 ≤ 200 ms",
                Some(p99 <= 200.0 && n >= POISON_NORMALS),
            );
            drain_postfix("the poison run").await;
        }
    });
}

#[test]
fn generated_requests_are_realistic_human_mail() {
    let set = requests(7, 200, "bench-req-check", 20, "hd@example.test");
    let stats = SetStats::of(&set);
    assert!(
        stats.min >= 800 && stats.max <= 4_100,
        "{}",
        stats.describe()
    );
    assert!(
        stats.alternative > 40 && stats.attachment > 2,
        "{}",
        stats.describe()
    );
    let own = vec!["hd@example.test".to_string()];
    for (raw, shape) in &set {
        let m = folio::inbound::mail::parse(raw, u64::MAX);
        let verdict = folio::inbound::classify::classify(&m, &own);
        assert!(!verdict.is_automatic(), "{verdict:?}");
        assert!(m
            .from_email
            .as_deref()
            .is_some_and(|f| f.starts_with("bench-req-check-")));
        assert!(m.message_id.is_some());
        assert!(!m.subject.is_empty() && m.subject.is_char_boundary(m.subject.len()));
        assert!(m.body_text.len() > 150, "{}", m.body_text);
        assert!(
            !m.body_text.contains("=C3") && !m.body_text.contains("<p>"),
            "body decoded: {}",
            m.body_text
        );
        assert_eq!(
            m.attachments.len(),
            usize::from(*shape == Shape::Attachment)
        );
    }
    let many = requests(8, 800, "x", 10, "hd@example.test");
    let stats = SetStats::of(&many);
    let mean = stats.bytes / stats.n;
    assert!((1_800..=3_200).contains(&mean), "{}", stats.describe());
}

// ---------------------------------------------------------------------------------------------
// 7. Scheduled work

/// Tickets in the store of benchmark 7.
const SWEEP_TICKETS: usize = 100_000;
/// The items whose time has come when benchmark 7 sweeps, by kind: 10,000 in all, each of
/// which queues one mail to its requester.
const SWEEP_DUE: [(DueKind, usize); 4] = [
    (DueKind::ConfirmReminder, 4_000),
    (DueKind::AutoClose, 3_000),
    (DueKind::Survey, 2_000),
    (DueKind::SurveyReminder, 1_000),
];
/// Tickets resolved an hour before the sweep: their reminder and closing are pending, not due.
const SWEEP_NOT_YET_DUE: usize = 5_000;
/// Distinct requesters of benchmark 7's tickets.
const SWEEP_REQUESTERS: usize = 5_000;
/// Sweeps with nothing due, timed one by one after the big one.
const EMPTY_SWEEPS: usize = 200;
/// How long folio sits idle, sweeping every second, before its RSS is read.
const SWEEP_IDLE: Duration = Duration::from_secs(10);

/// Where a ticket of benchmark 7 is in its life.
#[derive(Clone, Copy)]
enum Life {
    /// Resolved or closed earlier, with an item of this kind due before the sweep.
    Due(DueKind),
    /// Resolved an hour before the sweep: reminder and closing still to come.
    NotYetDue,
}

struct NoEnv;

impl folio::config::Env for NoEnv {
    fn var(&self, _: &str) -> Option<String> {
        None
    }
}

/// The daemon's configuration for the in-process sweeps of benchmark 7 (mail servers named,
/// never contacted; the calendar, `[lifecycle]` and limits at their defaults).
fn sweep_config(hd: &str) -> folio::config::Config {
    let text = format!(
        "[imap]\nhost = \"127.0.0.1\"\ntls = \"none\"\nusername = \"{hd}\"\npassword = \"x\"\n\
         [smtp]\nhost = \"127.0.0.1\"\ntls = \"none\"\nfrom = \"Mesa de Ayuda <{hd}>\"\n\
         [templates]\ndir = \"{}/mail-templates\"\n",
        harness::REPO
    );
    folio::config::Config::parse(Path::new("bench-7.toml"), &text, &NoEnv).expect("config")
}

/// A read-write connection of the benchmark's own to a store's file, for the few writes the
/// public store API has no call for (each says why at its use).
async fn raw_db(path: &Path) -> AnyPool {
    sqlx::any::install_default_drivers();
    AnyPoolOptions::new()
        .max_connections(1)
        .connect(&format!("sqlite://{}", path.display()))
        .await
        .expect("open the database")
}

/// Benchmark 7's store at `path`: `SWEEP_TICKETS` tickets, each with its opening message and its
/// confirmation sent; spread among them, the tickets of `SWEEP_DUE` with their item due before
/// `t0` and `SWEEP_NOT_YET_DUE` resolved ones whose items fall due after it. Written through the
/// store's public API as the pipeline and the sweep write them, except the sent confirmations.
async fn scheduled_store(path: &Path, hd: &str, t0: DateTime<Utc>) -> Store {
    use chrono::Datelike;
    let store = Store::open(&format!("sqlite://{}", path.display()))
        .await
        .expect("open the store");
    let opened = t0 - chrono::Duration::days(90);
    let mut rng = Rng::new(7);
    let mut ids = Vec::with_capacity(SWEEP_TICKETS);
    for start in (0..SWEEP_TICKETS).step_by(5_000) {
        let n = 5_000.min(SWEEP_TICKETS - start);
        let mut tx = store.begin().await.expect("begin");
        let first = tx
            .allocate_folios(opened.year(), n)
            .await
            .expect("folio numbers");
        let mut folios = Vec::with_capacity(n);
        let mut tickets = Vec::with_capacity(n);
        let mut raws = Vec::with_capacity(n);
        for i in start..start + n {
            let from = format!("bench-sched-req-{}@example.test", i % SWEEP_REQUESTERS);
            let subject = *rng.pick(SUBJECTS_7);
            let raw = harness::message(
                &from,
                hd,
                subject,
                "Buenos días, desde ayer no funciona. ¿Me pueden ayudar? Gracias.",
                &format!("bench-sched-{i}@client.example.test"),
            );
            folios.push(format!(
                "MDA-{}-{:06}",
                opened.year(),
                first + (i - start) as i64
            ));
            tickets.push(NewTicket {
                requester: Requester {
                    email: from,
                    name: Some(rng.pick(FIRST_NAMES).to_string()),
                    ..Requester::default()
                },
                subject: subject.to_string(),
                language: "es".into(),
                referenced_folio: None,
                channel: "email",
                opened_by: None,
                participants: vec![],
                routing: Routing {
                    service: "correo".into(),
                    ticket_type: TicketType::Incidente,
                    priority: Priority::Media,
                    assignee: None,
                    rules: vec![],
                },
            });
            raws.push(raw);
        }
        let rows: Vec<TicketRow> = folios
            .iter()
            .zip(&tickets)
            .map(|(folio, ticket)| TicketRow {
                folio: folio.clone(),
                ticket,
            })
            .collect();
        let by_folio = tx.insert_tickets(&rows, opened).await.expect("tickets");
        let mails: Vec<_> = raws
            .iter()
            .map(|raw| folio::inbound::mail::parse(raw, 1 << 20))
            .collect();
        let sources: Vec<String> = (start..start + n).map(|i| format!("bench:{i}")).collect();
        let messages: Vec<MessageRow> = folios
            .iter()
            .zip(&raws)
            .zip(&mails)
            .zip(&sources)
            .map(|(((folio, raw), mail), source)| MessageRow {
                ticket_id: Some(by_folio[folio]),
                source,
                raw,
                mail,
                new_content: &mail.body_text,
                automatic_kind: None,
                verdict_reason: "human",
                decision_reason: "new_ticket",
                author_role: "requester",
                internal: false,
                seen_at: opened,
            })
            .collect();
        tx.insert_messages(&messages, opened)
            .await
            .expect("messages");
        tx.commit().await.expect("commit");
        ids.extend(folios.iter().map(|f| by_folio[f]));
    }

    // Every ticket's confirmation went out when it was opened: a help desk with 100,000 tickets
    // has at least as many sent rows in its outbox, and their indexes are part of what the
    // sweep's inserts pay for. The store queues mail only as a rendered notice (`Reply`), one
    // statement per 500; one INSERT … SELECT writes this history in about a second.
    let raw = raw_db(path).await;
    let at = folio::store::ts(opened);
    sqlx::query(
        "INSERT INTO outbox (ticket_id, template, language, to_address, message_id, in_reply_to,
           references_list, context, auto_submitted, status, attempts, next_attempt_at, created_at,
           sent_at)
         SELECT t.id, 'confirmation', 'es', t.requester_email,
           'bench-confirmation-' || t.id || '@example.test', NULL, '', '{}', 'auto-replied',
           'sent', 1, ?, ?, ? FROM tickets t",
    )
    .bind(&at)
    .bind(&at)
    .bind(&at)
    .execute(&raw)
    .await
    .expect("sent confirmations");
    raw.close().await;

    // Lives, shuffled and spread evenly over the tickets.
    let mut lives: Vec<Life> = SWEEP_DUE
        .iter()
        .flat_map(|(kind, n)| std::iter::repeat_n(Life::Due(*kind), *n))
        .chain(std::iter::repeat_n(Life::NotYetDue, SWEEP_NOT_YET_DUE))
        .collect();
    for i in (1..lives.len()).rev() {
        lives.swap(i, rng.below(i + 1));
    }
    let stride = SWEEP_TICKETS / lives.len();
    let days = chrono::Duration::days;
    let schedule = |kind, at| LifeEffect::Schedule(Due { kind, at });
    for (chunk_no, chunk) in lives.chunks(1_000).enumerate() {
        let mut tx = store.begin().await.expect("begin");
        for (k, life) in chunk.iter().enumerate() {
            let j = chunk_no * 1_000 + k;
            let id = ids[j * stride];
            // Due in the last day before the sweep, a minute apart.
            let due = t0 - chrono::Duration::minutes(1 + (j % 1_440) as i64);
            let resolved = [Change::Status(Status::Resolved)];
            let closed = [Change::Status(Status::Closed)];
            let confirmed = LifeEffect::Closed {
                reason: CloseReason::Confirmed,
            };
            let (at, changes, effects): (_, &[Change], Vec<LifeEffect>) = match life {
                Life::Due(DueKind::ConfirmReminder) => (
                    t0 - days(3),
                    &resolved,
                    vec![
                        schedule(DueKind::ConfirmReminder, due),
                        schedule(DueKind::AutoClose, t0 + days(2)),
                    ],
                ),
                Life::Due(DueKind::AutoClose) => (
                    t0 - days(7),
                    &resolved,
                    vec![schedule(DueKind::AutoClose, due)],
                ),
                Life::Due(DueKind::Survey) => (
                    t0 - days(1),
                    &closed,
                    vec![confirmed, schedule(DueKind::Survey, due)],
                ),
                Life::Due(DueKind::SurveyReminder) => (
                    t0 - days(4),
                    &closed,
                    vec![
                        confirmed,
                        LifeEffect::SurveySent,
                        schedule(DueKind::SurveyReminder, due),
                    ],
                ),
                Life::NotYetDue => (
                    t0 - chrono::Duration::hours(1),
                    &resolved,
                    vec![
                        schedule(DueKind::ConfirmReminder, t0 + days(2)),
                        schedule(DueKind::AutoClose, t0 + days(5)),
                    ],
                ),
                Life::Due(other) => panic!("bench 7 sets up no {other:?} items"),
            };
            tx.change_ticket(id, changes).await.expect("change");
            tx.record_life(id, changes, &effects, at)
                .await
                .expect("life");
            // `record_life` leaves the work a change schedules to the caller, as the pipeline
            // and the sweep write it: all at once.
            let due: Vec<(i64, Due)> = effects
                .iter()
                .filter_map(|e| match e {
                    LifeEffect::Schedule(d) => Some((id, *d)),
                    _ => None,
                })
                .collect();
            tx.schedule(&due, at).await.expect("schedule");
        }
        tx.commit().await.expect("commit");
    }
    store
}

const SUBJECTS_7: &[&str] = &[
    "No puedo entrar al correo",
    "La impresora no imprime",
    "Sin internet en el laboratorio",
    "Cambio de contraseña",
    "El proyector del aula 12 no enciende",
    "Solicitud de software",
];

/// Figures of the in-process sweeps of benchmark 7.
struct SweepRun {
    sweep_secs: f64,
    /// Wall time of each sweep with nothing due, ascending (ms).
    empty_ms: Vec<f64>,
}

/// Builds the store, then times the sweep of the 10,000 due items and the empty sweeps after
/// it, with the daemon's scheduler (`daemon::assemble`) on a clock standing at `t0`. Leaves
/// the store closed at `path`, its queued mail marked sent.
async fn sweep_run(path: &Path, t0: DateTime<Utc>) -> SweepRun {
    let hd = "bench-sched-hd@example.test";
    let started = Instant::now();
    let store = scheduled_store(path, hd, t0).await;
    let setup_secs = started.elapsed().as_secs_f64();
    let raw = raw_db(path).await;
    let now = folio::store::ts(t0);
    let due_count = |sql: &'static str| {
        let raw = &raw;
        let now = &now;
        async move {
            sqlx::query_scalar::<_, i64>(sql)
                .bind(now)
                .fetch_one(raw)
                .await
                .expect("count")
        }
    };
    let due_before =
        due_count("SELECT count(*) FROM due_items WHERE status = 'pending' AND due_at <= ?").await;
    let pending_before =
        due_count("SELECT count(*) FROM due_items WHERE status = 'pending' AND due_at > ?").await;
    let queued_before = count(&raw, "SELECT count(*) FROM outbox WHERE status = 'pending'").await;
    let size_mb = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0) as f64 / 1e6;
    info(format!(
        "setup {setup_secs:.1} s: {} tickets, {} messages, {} outbox rows, {due_before} items due at the sweep, {pending_before} pending later; database {size_mb:.0} MB (+ WAL)",
        count(&raw, "SELECT count(*) FROM tickets").await,
        count(&raw, "SELECT count(*) FROM messages").await,
        count(&raw, "SELECT count(*) FROM outbox").await,
    ));
    let want: usize = SWEEP_DUE.iter().map(|(_, n)| n).sum();
    assert_eq!(due_before, want as i64, "items due before the sweep");
    assert_eq!(queued_before, 0, "mail queued before the sweep");

    let clock = Arc::new(folio::clock::FixedClock::new(t0));
    let parts = folio::daemon::assemble(&sweep_config(hd), clock, store.clone())
        .await
        .expect("assemble the daemon's parts");

    // (a) Everything due, in one sweep.
    let started = Instant::now();
    let done = parts.scheduler.sweep().await.expect("sweep");
    let sweep_secs = started.elapsed().as_secs_f64();
    assert_eq!(done, want, "items the sweep did");
    // It did them: every item done with its mail queued, nothing due left.
    let queued: Vec<(String, i64)> = sqlx::query_as(
        "SELECT template, count(*) FROM outbox WHERE status = 'pending'
         GROUP BY template ORDER BY template",
    )
    .fetch_all(&raw)
    .await
    .expect("queued mail");
    info(format!(
        "one sweep: {done} items in {sweep_secs:.2} s ({:.0} µs per item); queued {}",
        sweep_secs / done as f64 * 1e6,
        queued
            .iter()
            .map(|(t, n)| format!("{n} {t}"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    for (kind, n) in SWEEP_DUE {
        let template = match kind {
            DueKind::AutoClose => "closure",
            other => other.as_str(),
        };
        let got = queued.iter().find(|(t, _)| t == template).map(|q| q.1);
        assert_eq!(got, Some(n as i64), "{template} mails queued");
    }
    let finished = count(
        &raw,
        "SELECT count(*) FROM due_items WHERE status = 'done' AND outcome IN ('sent', 'closed')",
    )
    .await;
    assert_eq!(finished, want as i64, "items done with their mail");
    let left =
        due_count("SELECT count(*) FROM due_items WHERE status = 'pending' AND due_at <= ?").await;
    assert_eq!(left, 0, "items still due after the sweep");
    info(format!(
        "after it: {} items pending for later (the closings queued the surveys, the surveys their reminders)",
        count(&raw, "SELECT count(*) FROM due_items WHERE status = 'pending'").await
    ));

    // (b) Sweeps with nothing due, over the same tables, a few ms apart.
    let mut empty_ms = Vec::with_capacity(EMPTY_SWEEPS);
    for _ in 0..EMPTY_SWEEPS {
        tokio::time::sleep(Duration::from_millis(5)).await;
        let started = Instant::now();
        let n = parts.scheduler.sweep().await.expect("empty sweep");
        empty_ms.push(started.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(n, 0, "a sweep with nothing due did something");
    }
    empty_ms.sort_by(f64::total_cmp);

    // Benchmark 7's idle daemon gets this store: the mail the sweep queued is marked sent so
    // that it has nothing to send (the store has no call that marks mail sent without a send).
    sqlx::query("UPDATE outbox SET status = 'sent', sent_at = ? WHERE status = 'pending'")
        .bind(&now)
        .execute(&raw)
        .await
        .expect("mark the queued mail sent");
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&raw)
        .await
        .expect("checkpoint");
    raw.close().await;
    store.close().await;
    SweepRun {
        sweep_secs,
        empty_ms,
    }
}

/// Starts `folio run` on a copy of the store at `db`, with `schedule.sweep` every second; after
/// `SWEEP_IDLE` idle, its figures and the CPU it spent idle. One item (on an open ticket, so it
/// sends nothing) falls due 2 s after start: it is done within a second or two of its time only
/// if the cron ticks are sweeping.
async fn idle_with_sweeps(db: &Path) -> (Idle, f64, f64) {
    let hd = unique("bench-sched-hd");
    let mut folio = Folio::new(
        &hd,
        Options {
            extra: "[schedule]\nsweep = \"* * * * * *\"\n".into(),
            ..Options::default()
        },
    );
    std::fs::copy(db, db_path(&folio)).expect("copy the store");
    let (_, ready_secs, _) = timed_start(&mut folio).await;
    let pid = pid_of(&folio.config);
    let cpu_at_ready = cpu_seconds(pid);
    // The store has no call that schedules work without a status change; one row does it.
    let probe_at = Utc::now() + chrono::Duration::seconds(2);
    let raw = raw_db(&db_path(&folio)).await;
    sqlx::query(
        "INSERT INTO due_items (ticket_id, kind, due_at, created_at)
         SELECT min(id), 'confirm_reminder', ?, ? FROM tickets WHERE status = 'open'",
    )
    .bind(folio::store::ts(probe_at))
    .bind(folio::store::ts(Utc::now()))
    .execute(&raw)
    .await
    .expect("probe item");
    raw.close().await;
    let idle = idle_after(&folio, SWEEP_IDLE).await;
    let db = open_db(&folio).await;
    let (outcome, finished): (Option<String>, Option<String>) = sqlx::query_as(
        "SELECT outcome, finished_at FROM due_items WHERE id = (SELECT max(id) FROM due_items)",
    )
    .fetch_one(&db)
    .await
    .expect("the probe item");
    let queued = count(&db, "SELECT count(*) FROM outbox WHERE status = 'pending'").await;
    db.close().await;
    assert!(folio.stop().success(), "folio exited with an error");
    let finished = finished.map(|f| db_time(&f)).unwrap_or_else(|| {
        panic!("the probe item due 2 s after start was not done in {SWEEP_IDLE:?}: the scheduler did not sweep")
    });
    info(format!(
        "the probe item due 2 s after start: {} {:.1} s after its time",
        outcome.unwrap_or_default(),
        secs(finished - probe_at)
    ));
    assert_eq!(queued, 0, "the idle daemon queued mail");
    (idle, idle.cpu_secs - cpu_at_ready, ready_secs)
}

#[test]
#[ignore = "benchmark: run with scripts/bench"]
fn bench_7_scheduled_work() {
    println!(
        "\n=== 7. scheduled work: sweeps over {SWEEP_TICKETS} tickets; folio idle with a sweep every second ==="
    );
    if folio::store::scratch::on_postgres() {
        // It builds its 100,000-ticket store as a SQLite file and hands that file to the daemon.
        info("benchmark 7 runs on SQLite only (it builds its store as a SQLite file); skipped on PostgreSQL");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("folio.db");
    // Due times are a day before "now"; the wall clock's now, so that the items the sweep
    // schedules are still in the future when the real daemon gets the store in (c).
    let t0 = Utc::now();
    // As in the daemon (`main.rs`): the runtime on one thread (the sqlx worker beside it), every
    // item done logged at info, here to a file.
    let log = dir.path().join("sweep.log");
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
        .with_ansi(false)
        .with_writer(std::sync::Mutex::new(
            std::fs::File::create(&log).expect("log file"),
        ))
        .finish();
    let current_thread = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let run = tracing::subscriber::with_default(subscriber, || {
        current_thread.block_on(sweep_run(&db, t0))
    });
    let logged = std::fs::read_to_string(&log)
        .unwrap_or_default()
        .matches("due work done")
        .count();
    info(format!("the sweep logged {logged} \"due work done\" lines"));
    let due: usize = SWEEP_DUE.iter().map(|(_, n)| n).sum();
    result(
        "7 scheduled work",
        &format!(
            "one sweep: {due} due items among {SWEEP_TICKETS} tickets, all done + mail queued"
        ),
        format!(
            "{:.2} s = {:.0} items/s",
            run.sweep_secs,
            due as f64 / run.sweep_secs
        ),
        "≤ 2 s",
        Some(run.sweep_secs <= 2.0),
    );
    let (p50, p99) = (
        percentile(&run.empty_ms, 50.0),
        percentile(&run.empty_ms, 99.0),
    );
    result(
        "7 scheduled work",
        &format!("a sweep with nothing due, p50 / p99 / max of {EMPTY_SWEEPS}"),
        format!(
            "{p50:.2} / {p99:.2} / {:.2} ms",
            run.empty_ms.last().copied().unwrap_or(f64::NAN)
        ),
        "≤ 5 ms (p99)",
        Some(p99 <= 5.0),
    );

    // (c) The real daemon, idle on that store, sweeping every second.
    let (idle, idle_cpu, ready_secs) = runtime().block_on(idle_with_sweeps(&db));
    info(format!(
        "folio run on the 100k-ticket store: ready {:.0} ms after spawn; CPU over {} s idle: {:.0} ms; VmHWM {:.1} MB",
        ready_secs * 1000.0,
        SWEEP_IDLE.as_secs(),
        idle_cpu * 1000.0,
        mb(idle.hwm_kb)
    ));
    result(
        "7 scheduled work",
        &format!(
            "idle RSS (VmRSS), sweep every second, 100k-ticket store, {} s after ready",
            SWEEP_IDLE.as_secs()
        ),
        format!("{:.1} MB", mb(idle.rss_kb)),
        "≤ 20 MB",
        Some(mb(idle.rss_kb) <= 20.0),
    );
}

// ---------------------------------------------------------------------------------------------
// 8. Several instances (issue 10)

/// Instances of the 3-instance run.
const INSTANCES: [&str; 3] = ["a", "b", "c"];

/// The pids of every `folio run` started with `config` (all instances of one deployment; the
/// path is unique per test).
fn pids_of(config: &Path) -> Vec<u32> {
    let needle = config.as_os_str().as_encoded_bytes();
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        if args.first().is_some_and(|a| a.ends_with(b"folio"))
            && args.contains(&needle)
            && args.iter().any(|a| *a == b"run")
        {
            out.push(pid);
        }
    }
    out
}

/// One backlog run on `names.len()` instances of one deployment.
struct InstancesRun {
    /// Spawn → every message ticketed with its confirmation queued.
    ingest_secs: f64,
    /// Spawn → every confirmation accepted by Postfix.
    e2e_secs: f64,
    /// CPU of all instances (start-up included), when every confirmation was accepted.
    cpu_secs: f64,
    /// The instance holding the mailbox when the backlog was done.
    holder: String,
    /// Seconds from `kill -9` of the holder to `folio status` naming another holder (only when
    /// `takeover` was asked).
    takeover_secs: Option<f64>,
}

/// Puts `BACKLOG` requests into a new help desk's INBOX while no folio runs, starts the named
/// instances at once and times them through the backlog; then, when `takeover`, kills the
/// mailbox holder with SIGKILL and times until `folio status` shows another holder.
async fn instances_run(names: &[&str], takeover: bool) -> InstancesRun {
    let hd = unique("bench-inst-hd");
    let base = requester_base("bench-inst-req");
    let mut folio = Folio::new(
        &hd,
        Options {
            max_auto_replies: 100_000,
            ..Options::default()
        },
    );
    // The first start records the folder's baseline (as in benchmark 1).
    folio.start(&[]).await;
    assert!(folio.stop().success(), "folio exited with an error");
    let set = Arc::new(requests(8, BACKLOG, &base, REQUESTERS, &hd));
    multiappend(&hd, "INBOX", "", false, set.clone(), BACKLOG).await;
    drop(set);
    let db = open_db(&folio).await;
    let spawned = Instant::now();
    let mut instances: Vec<harness::Instance> =
        names.iter().map(|n| folio.spawn_instance(n)).collect();
    let n = BACKLOG as i64;
    let limit = Instant::now() + Duration::from_secs(300);
    let ingest_secs = loop {
        // As in the 10k run: an index lookup per poll, the counts once the ids reach the end.
        let newest = count(&db, "SELECT coalesce(max(id), 0) FROM messages").await;
        let (messages, queued) = if newest >= n {
            (
                count(&db, "SELECT count(*) FROM messages").await,
                count(&db, "SELECT count(*) FROM outbox").await,
            )
        } else {
            (newest, 0)
        };
        if messages >= n && queued >= n {
            break spawned.elapsed().as_secs_f64();
        }
        assert!(
            Instant::now() < limit,
            "{} instance(s): ingest incomplete after 300 s: {messages} messages, {queued} queued",
            names.len()
        );
        tokio::time::sleep(POLL).await;
    };
    let e2e_secs = loop {
        let pending = count(&db, "SELECT count(*) FROM outbox WHERE status = 'pending'").await;
        if pending == 0 {
            break spawned.elapsed().as_secs_f64();
        }
        assert!(
            Instant::now() < limit,
            "{} instance(s): sending incomplete after 300 s: {pending} pending",
            names.len()
        );
        tokio::time::sleep(POLL).await;
    };
    let cpu_secs: f64 = pids_of(&folio.config).into_iter().map(cpu_seconds).sum();
    let tickets = count(&db, "SELECT count(*) FROM tickets").await;
    let failed = count(&db, "SELECT count(*) FROM outbox WHERE status = 'failed'").await;
    assert_eq!(tickets, n, "every message opens one ticket");
    assert_eq!(failed, 0, "no confirmation may fail");
    // Who sent what, when: the claim's holder stays on a sent row.
    /// Holder, mails sent, first and last sent_at.
    type Share = (Option<String>, i64, Option<String>, Option<String>);
    let shares: Vec<Share> = sqlx::query_as(
        "SELECT claimed_by, count(*), min(sent_at), max(sent_at) FROM outbox
         WHERE status = 'sent' GROUP BY claimed_by ORDER BY claimed_by",
    )
    .fetch_all(&db)
    .await
    .expect("senders' shares");
    let names_of: Vec<(String, String)> = sqlx::query_as("SELECT id, name FROM instances")
        .fetch_all(&db)
        .await
        .expect("instance names");
    let first_sent = shares.iter().filter_map(|s| s.2.clone()).min();
    let offset = |t: &Option<String>| -> f64 {
        match (t.as_deref(), first_sent.as_deref()) {
            (Some(t), Some(f)) => (db_time(t) - db_time(f)).num_milliseconds() as f64 / 1000.0,
            _ => f64::NAN,
        }
    };
    let shares: Vec<String> = shares
        .iter()
        .map(|(by, n, first, last)| {
            let name = names_of
                .iter()
                .find(|(id, _)| Some(id) == by.as_ref())
                .map_or("-", |(_, name)| name.as_str());
            format!(
                "{name} sent {n} from +{:.1} s to +{:.1} s",
                offset(first),
                offset(last)
            )
        })
        .collect();
    info(format!(
        "{} instance(s), sending (times from the first mail sent): {}",
        names.len(),
        shares.join("; ")
    ));
    let holder = folio.mailbox_holder().unwrap_or_default();
    let processed: Vec<String> = instances
        .iter()
        .map(|i| {
            format!(
                "{} processed {}",
                i.name,
                i.log_text().matches(" processed ").count()
            )
        })
        .collect();
    info(format!(
        "{} instance(s): mailbox holder at the end {holder:?}; {}",
        names.len(),
        processed.join(", ")
    ));
    let takeover_secs = if takeover {
        let victim = instances
            .iter_mut()
            .find(|i| i.name == holder)
            .expect("the holder is one of ours");
        victim.kill9();
        let killed = Instant::now();
        let next = wait_for(
            "another instance to hold the mailbox",
            Duration::from_secs(60),
            || async { folio.mailbox_holder().filter(|h| *h != holder) },
        )
        .await;
        let took = killed.elapsed().as_secs_f64();
        info(format!(
            "kill -9 of the holder {holder:?}: {next:?} holds the mailbox {took:.1} s later (folio status --json polled back to back)"
        ));
        Some(took)
    } else {
        None
    };
    db.close().await;
    for i in instances
        .iter_mut()
        .filter(|i| i.name != holder || !takeover)
    {
        assert!(
            i.stop().success(),
            "instance {} exited with an error",
            i.name
        );
    }
    InstancesRun {
        ingest_secs,
        e2e_secs,
        cpu_secs,
        holder,
        takeover_secs,
    }
}

#[test]
#[ignore = "benchmark: run with scripts/bench"]
fn bench_8_instances() {
    println!(
        "\n=== 8. several instances: {BACKLOG} backlog on 1, 3, 3 and 1 instances of one deployment; kill -9 of the holder ==="
    );
    runtime().block_on(async {
        drain_postfix("earlier benchmarks").await;
        // One, three, three, one: what drifts over the benchmark (the machine's load, the
        // autovacuum of an earlier run's database, the mail servers' growing folders) weighs on
        // both sides alike. One pair read 84 % and the next 97 % with the same code when each
        // side ran once, one always first (docs/benchmarks.md §8f).
        let mut one: Vec<InstancesRun> = Vec::new();
        let mut three: Vec<InstancesRun> = Vec::new();
        for (k, n) in [1, 3, 3, 1].into_iter().enumerate() {
            // The kill -9 ends the last three-instance run, once its backlog is timed.
            let run = instances_run(&INSTANCES[..n], k == 2).await;
            drain_postfix(&format!("the {n}-instance run's confirmations")).await;
            info(format!(
                "run {} ({n} instance{}): all ticketed {:.2} s after spawn ({:.0} msg/s), all confirmations accepted {:.2} s ({:.0} msg/s); CPU of all instances {:.2} s = {:.3} ms per message; holder {:?}",
                k + 1,
                if n == 1 { "" } else { "s" },
                run.ingest_secs,
                BACKLOG as f64 / run.ingest_secs,
                run.e2e_secs,
                BACKLOG as f64 / run.e2e_secs,
                run.cpu_secs,
                1000.0 * run.cpu_secs / BACKLOG as f64,
                run.holder
            ));
            if n == 1 { one.push(run) } else { three.push(run) }
        }
        let total = |runs: &[InstancesRun], secs: fn(&InstancesRun) -> f64| -> f64 {
            runs.iter().map(secs).sum()
        };
        let rate = |runs: &[InstancesRun], secs: fn(&InstancesRun) -> f64| -> f64 {
            (runs.len() * BACKLOG) as f64 / total(runs, secs)
        };
        let ingest = |r: &InstancesRun| r.ingest_secs;
        let e2e = |r: &InstancesRun| r.e2e_secs;
        let ingest_ratio = 100.0 * total(&one, ingest) / total(&three, ingest);
        let e2e_ratio = 100.0 * total(&one, e2e) / total(&three, e2e);
        // Pairs in the order they ran: runs 1 and 2, runs 3 and 4.
        let pairs: Vec<String> = one
            .iter()
            .zip(&three)
            .map(|(o, t)| format!("{:.0} %", 100.0 * o.e2e_secs / t.e2e_secs))
            .collect();
        result(
            "8 instances",
            "3 instances' ingest rate / 1 instance's (spawn → all ticketed; only the mailbox holder ingests; two runs each)",
            format!(
                "{ingest_ratio:.0} % ({:.0} vs {:.0} msg/s)",
                rate(&three, ingest),
                rate(&one, ingest)
            ),
            "(info)",
            None,
        );
        result(
            "8 instances",
            "3 instances' end-to-end rate / 1 instance's (spawn → all confirmations accepted; two runs each, 1, 3, 3, 1)",
            format!(
                "{e2e_ratio:.0} % ({:.0} vs {:.0} msg/s; pairs {})",
                rate(&three, e2e),
                rate(&one, e2e),
                pairs.join(", ")
            ),
            "≥ 100 %",
            Some(e2e_ratio >= 100.0),
        );
        let takeover = three[1]
            .takeover_secs
            .expect("the last 3-instance run timed a takeover");
        result(
            "8 instances",
            "kill -9 of the mailbox holder → folio status shows another holder",
            format!("{takeover:.1} s"),
            "≤ 15 s",
            Some(takeover <= 15.0),
        );
    });
}
