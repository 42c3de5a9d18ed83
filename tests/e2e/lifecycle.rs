//! A ticket's whole life by mail against the real stack, on a calendar open all day and spans of
//! seconds: the requester confirms or rejects a resolution, or says nothing and is reminded and
//! closed; the survey goes out, is answered, recorded and thanked.

use serde_json::Value;

use super::conversation::{mail, staff_reply, staffed_desk_with, ticket_until, Desk};
use super::harness::*;
use super::{inbox, WAIT};

/// Every day, all day; the sweep every second; `lifecycle` as given.
fn config(lifecycle: &str) -> String {
    format!(
        r#"
[calendar]
timezone = "America/Mexico_City"
workdays = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
hours = "00:00-24:00"

[lifecycle]
{lifecycle}

[schedule]
sweep = "* * * * * *"
"#
    )
}

/// Lifecycle spans that do not come due during a test.
const NOTHING_DUE_SOON: &str = r#"confirm_reminder_after = "1h"
auto_close_after = "2h"
survey_after = "1h"
survey_reminder_after = "1h""#;

/// Lifecycle spans where only the survey comes due during a test, 2 s after closing.
const SURVEY_SOON: &str = r#"confirm_reminder_after = "1h"
auto_close_after = "2h"
survey_after = "2s"
survey_reminder_after = "1h""#;

/// How many local days (Mexico City, UTC-6 all year: the calendar of these tests) have begun
/// since `first`, counting its own: a report due "every second" belongs to a new period each
/// local day, so a test that runs across midnight rightly gets one more.
fn days_since(first: chrono::NaiveDate) -> usize {
    let today = local_date();
    (today - first).num_days() as usize + 1
}

fn local_date() -> chrono::NaiveDate {
    let mexico = chrono::FixedOffset::west_opt(6 * 3600).unwrap();
    chrono::Utc::now().with_timezone(&mexico).date_naive()
}

/// `alice` asks the desk for help with her mail (routed to tech1).
async fn request(desk: &Desk, alice: &str) {
    let raw = message(
        alice,
        &desk.hd,
        "No puedo entrar al correo",
        "Ayuda.",
        &message_id(),
    );
    send(alice, &desk.hd, &raw).await;
}

/// A mail from `from` answering `parent` (threaded under it, its subject with `RE:`).
async fn answer(from: &str, to: &str, parent: &folio::inbound::mail::InboundMail, body: &str) {
    let id = parent.message_id.clone().unwrap();
    let raw = mail(
        from,
        to,
        &format!("RE: {}", parent.subject),
        body,
        &message_id(),
        &format!("In-Reply-To: <{id}>\r\nReferences: <{id}>\r\n"),
    );
    send(from, to, &raw).await;
}

/// alice opens a ticket, tech1 resolves it; returns the folio, the assignment notice and the
/// resolution notice alice got (her second mail).
async fn resolved(desk: &Desk, alice: &str) -> (String, folio::inbound::mail::InboundMail) {
    let raw = message(
        alice,
        &desk.hd,
        "No puedo entrar al correo",
        "Me dice contraseña inválida.",
        &message_id(),
    );
    send(alice, &desk.hd, &raw).await;
    inbox(alice, 1).await;
    let f = desk.folio.first_folio().await;
    let notice = inbox(&desk.tech1, 1).await.remove(0);
    staff_reply(
        &desk.tech1,
        &notice,
        "#resuelto Se restableció su contraseña.",
    )
    .await;
    let resolution = inbox(alice, 2)
        .await
        .into_iter()
        .find(|m| m.body_text.contains("Se restableció su contraseña"))
        .expect("the resolution notice");
    assert!(
        resolution.body_text.contains("ya quedó"),
        "the resolution asks to confirm:\n{}",
        resolution.body_text
    );
    assert!(
        !desk.folio.show(&f)["first_response_at"].is_null(),
        "#resuelto is the ticket's first response"
    );
    (f, resolution)
}

fn mail_with<'a>(
    mails: &'a [folio::inbound::mail::InboundMail],
    needle: &str,
) -> Option<&'a folio::inbound::mail::InboundMail> {
    mails.iter().find(|m| m.body_text.contains(needle))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confirmed_resolution_closes_and_the_survey_is_recorded_and_thanked() {
    let desk = staffed_desk_with(&config(SURVEY_SOON)).await;
    let alice = unique("alice");
    let (f, resolution) = resolved(&desk, &alice).await;

    // alice confirms: closed, she is told once, tech1 hears how her answer was read.
    answer(
        &alice,
        &desk.hd,
        &resolution,
        "Sí, ya quedó. Muchas gracias!\n\nSaludos,\nAlicia",
    )
    .await;
    let t = ticket_until(&desk.folio, &f, "closed by the confirmation", |t| {
        t["status"] == "closed"
    })
    .await;
    assert_eq!(t["close_reason"], "confirmed", "{t}");
    let mails = inbox(&alice, 3).await;
    let closure = mail_with(&mails, "Gracias por confirmar la solución").expect("closure notice");
    assert!(closure.subject.contains(&f));
    let to_tech = inbox(&desk.tech1, 2).await;
    assert!(
        mail_with(&to_tech, "confirmó la solución").is_some(),
        "tech1 is told the requester confirmed"
    );

    // The survey, 2 s later, within the (all-day) business hours.
    let mails = inbox(&alice, 4).await;
    let survey = mail_with(&mails, "del 1 al 5").expect("the survey");
    assert!(survey.subject.contains("Encuesta"), "{}", survey.subject);

    // alice rates it: recorded against the ticket and thanked once.
    answer(&alice, &desk.hd, survey, "5 excelente servicio").await;
    let t = ticket_until(&desk.folio, &f, "the rating recorded", |t| {
        !t["satisfaction"].is_null()
    })
    .await;
    assert_eq!(t["satisfaction"]["rating"], 5, "{t}");
    assert_eq!(t["satisfaction"]["comment"], "excelente servicio", "{t}");
    let mails = inbox(&alice, 5).await;
    assert!(mail_with(&mails, "calificación de 5 de 5").is_some());

    // A second answer is a follow-up for the technician, not a second rating or thanks.
    answer(&alice, &desk.hd, survey, "1").await;
    ticket_until(&desk.folio, &f, "the second answer stored", |t| {
        t["messages"].as_array().is_some_and(|m| m.len() >= 5)
    })
    .await;
    let t = desk.folio.show(&f);
    assert_eq!(t["satisfaction"]["rating"], 5, "{t}");
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let mails = fetch_all(&alice, "INBOX").await;
    assert_eq!(mails.len(), 5, "nothing more to alice");
    assert_eq!(
        queued(&desk.folio, &f, "survey"),
        1,
        "one survey per ticket"
    );
}

/// How many mails of `template` ticket `f` has queued.
fn queued(folio: &Folio, f: &str, template: &str) -> usize {
    let t: Value = folio.show(f);
    t["outgoing"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["template"] == template)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_resolution_reopens_and_tells_the_technician() {
    let desk = staffed_desk_with(&config(SURVEY_SOON)).await;
    let alice = unique("alice");
    let (f, resolution) = resolved(&desk, &alice).await;
    answer(&alice, &desk.hd, &resolution, "No, sigue sin funcionar.").await;
    ticket_until(&desk.folio, &f, "reopened by the rejection", |t| {
        t["status"] == "open"
    })
    .await;
    let to_tech = inbox(&desk.tech1, 2).await;
    let told = mail_with(&to_tech, "sigue sin funcionar").expect("tech1 gets her answer");
    assert!(told.body_text.contains("se reabrió"), "{}", told.body_text);
    // Nothing is due any more: no reminder, no closing, no survey.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert_eq!(fetch_all(&alice, "INBOX").await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silence_brings_a_reminder_then_closes_with_the_reason_and_sends_the_survey() {
    let desk = staffed_desk_with(&config(
        r#"confirm_reminder_after = "2s"
auto_close_after = "5s"
survey_after = "2s"
survey_reminder_after = "3s""#,
    ))
    .await;
    let alice = unique("alice");
    let (f, _) = resolved(&desk, &alice).await;
    let mails = inbox(&alice, 3).await;
    assert!(
        mail_with(&mails, "aún no recibimos su confirmación").is_some(),
        "the reminder"
    );
    let t = ticket_until(&desk.folio, &f, "closed for lack of an answer", |t| {
        t["status"] == "closed"
    })
    .await;
    assert_eq!(t["close_reason"], "no_answer", "{t}");
    let mails = inbox(&alice, 5).await;
    assert!(
        mail_with(&mails, "no recibimos respuesta").is_some(),
        "closure says why"
    );
    assert!(mail_with(&mails, "del 1 al 5").is_some(), "the survey");
    // One survey reminder, then nothing more.
    let mails = inbox(&alice, 6).await;
    assert!(mail_with(&mails, "Hace unos días le enviamos una encuesta").is_some());
    tokio::time::sleep(WAIT / 10).await;
    assert_eq!(fetch_all(&alice, "INBOX").await.len(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_after_a_due_time_sends_the_reminder_once_after_restart() {
    let mut desk = staffed_desk_with(&config(
        r#"confirm_reminder_after = "5s"
auto_close_after = "1h"
survey_after = "1h"
survey_reminder_after = "1h""#,
    ))
    .await;
    let alice = unique("alice");
    let (f, _) = resolved(&desk, &alice).await;
    // Killed before the reminder is due; its time passes while folio is down.
    desk.folio.kill9();
    assert_eq!(
        queued(&desk.folio, &f, "confirm_reminder"),
        0,
        "killed before the reminder was due"
    );
    tokio::time::sleep(std::time::Duration::from_secs(6)).await;
    desk.folio.start(&[]).await;
    let mails = inbox(&alice, 3).await;
    assert!(mail_with(&mails, "aún no recibimos su confirmación").is_some());
    // Sweeps keep running every second: still one.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert_eq!(fetch_all(&alice, "INBOX").await.len(), 3);
    assert_eq!(queued(&desk.folio, &f, "confirm_reminder"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unanswered_ticket_warns_its_technician_then_escalates_once_to_the_groups_lead() {
    let desk = staffed_desk_with(&format!(
        "{}\n[sla]\nfirst_response = {{ media = \"4s\" }}\nwarn_at_percent = 50\n",
        config(NOTHING_DUE_SOON)
    ))
    .await;
    let alice = unique("alice");
    request(&desk, &alice).await;
    let f = desk.folio.first_folio().await;
    // tech1: the assignment, then the warning at half the target.
    let to_tech = inbox(&desk.tech1, 2).await;
    let warning = mail_with(&to_tech, "aún no tiene respuesta").expect("the SLA warning");
    assert!(warning.subject.contains(&f), "{}", warning.subject);
    // The lead: one escalation when the target passes.
    let to_lead = inbox(&desk.lead, 1).await;
    assert!(
        to_lead[0]
            .body_text
            .contains("no recibió primera respuesta"),
        "{}",
        to_lead[0].body_text
    );
    let t = ticket_until(&desk.folio, &f, "the breach in the history", |t| {
        t["events"].to_string().contains("sla_breach")
    })
    .await;
    assert!(t["first_response_at"].is_null(), "{t}");
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert_eq!(
        fetch_all(&desk.lead, "INBOX").await.len(),
        1,
        "escalated once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_technicians_digest_goes_out_once_a_day_even_when_folio_starts_late() {
    // First with a digest time that never comes (2099), to open the ticket.
    let mut desk = staffed_desk_with(&format!(
        "{}technician_digest = \"0 0 0 1 1 * 2099\"\n",
        config(NOTHING_DUE_SOON)
    ))
    .await;
    let alice = unique("alice");
    request(&desk, &alice).await;
    let f = desk.folio.first_folio().await;
    inbox(&desk.tech1, 1).await;
    // Restarted with a digest every second: the day's digest goes out at start-up (its time
    // has passed today), and no tick after it sends a second one the same day.
    desk.folio.stop();
    let text = std::fs::read_to_string(&desk.folio.config).unwrap();
    std::fs::write(
        &desk.folio.config,
        text.replace("\"0 0 0 1 1 * 2099\"", "\"* * * * * *\""),
    )
    .unwrap();
    let first_day = local_date();
    desk.folio.start(&[]).await;
    let to_tech = inbox(&desk.tech1, 2).await;
    let digest = mail_with(&to_tech, "Tiene 1 folio(s) abierto(s)").expect("the digest");
    assert!(digest.body_text.contains(&f), "{}", digest.body_text);
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert_eq!(
        fetch_all(&desk.tech1, "INBOX").await.len(),
        1 + days_since(first_day),
        "the assignment and one digest a day"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admins_get_the_weekly_summary_once() {
    let admin = unique("admin");
    let first_day = local_date();
    let desk = staffed_desk_with(&format!(
        "{}weekly_summary = \"* * * * * *\"\n\n[helpdesk]\nadmins = [\"{admin}\"]\n",
        config(NOTHING_DUE_SOON)
    ))
    .await;
    let mails = inbox(&admin, 1).await;
    assert!(
        mails[0].subject.contains("Resumen semanal"),
        "{}",
        mails[0].subject
    );
    assert!(
        mails[0].body_text.contains("Folios registrados: 0"),
        "{}",
        mails[0].body_text
    );
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    // "Every second" as a weekly time: one period per local day.
    assert_eq!(
        fetch_all(&admin, "INBOX").await.len(),
        days_since(first_day),
        "once per period"
    );
    drop(desk);
}
