//! Conversations by email against the real stack: routing to a technician, the technician's
//! relayed replies and commands (and a forged one), follow-ups from an Outlook-style client,
//! status queries, phone notes, forwards and bounces.

use serde_json::Value;

use super::harness::*;
use super::{inbox, WAIT};

/// A catalogue with this test's own (unique) staff addresses: mail service → tech1 only.
fn catalog(tech1: &str, tech2: &str, agent1: &str, lead: &str) -> String {
    format!(
        r#"
[assignment]
strategy = "least_open"
default_service = "general"

[[group]]
id = "correo"
lead = "{lead}"
[[group]]
id = "otros"

[[technician]]
name = "Tomás Técnico"
email = "{tech1}"
groups = ["correo"]
[[technician]]
name = "Teresa Técnica"
email = "{tech2}"
groups = ["otros"]

[[agent]]
name = "Agente Uno"
email = "{agent1}"

[[service]]
id = "correo-institucional"
name = "Correo institucional"
group = "correo"
keywords = ["correo", "outlook", "contraseña"]
[[service]]
id = "general"
name = "General"
group = "correo"
type = "solicitud"

[[priority.rule]]
level = "alta"
keywords = ["urgente"]
"#
    )
}

/// A running folio with its own help-desk address and staff (unique per test, so their
/// mailboxes start empty).
pub(crate) struct Desk {
    pub folio: Folio,
    pub hd: String,
    pub tech1: String,
    pub tech2: String,
    pub agent1: String,
    /// The lead of the mail group (SLA escalations).
    pub lead: String,
}

async fn staffed_desk() -> Desk {
    staffed_desk_with("").await
}

/// [`staffed_desk`] with more config sections (`extra`, TOML).
pub(crate) async fn staffed_desk_with(extra: &str) -> Desk {
    let (hd, tech1, tech2, agent1, lead) = (
        unique("hd"),
        unique("tech1"),
        unique("tech2"),
        unique("agent1"),
        unique("lead"),
    );
    let mut folio = Folio::new(
        &hd,
        Options {
            catalog: Some(catalog(&tech1, &tech2, &agent1, &lead)),
            extra: extra.to_string(),
            ..Options::default()
        },
    );
    folio.start(&[]).await;
    Desk {
        folio,
        hd,
        tech1,
        tech2,
        agent1,
        lead,
    }
}

/// A raw mail with extra headers (`Name: value` lines).
pub(crate) fn mail(
    from: &str,
    to: &str,
    subject: &str,
    body: &str,
    id: &str,
    extra: &str,
) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: {to}\r\n{extra}Subject: {subject}\r\nDate: Fri, 27 Nov 2026 10:00:00 -0600\r\n\
         Message-ID: <{id}>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Transfer-Encoding: 8bit\r\n\r\n{}\r\n",
        body.replace('\n', "\r\n")
    )
    .into_bytes()
}

/// `who`'s personal address, as `folio staff addresses` prints it for their address book.
fn personal_address(folio: &Folio, who: &str) -> String {
    let rows: Value = serde_json::from_str(&folio.cli(&["staff", "addresses", "--json"]))
        .expect("staff addresses prints JSON");
    rows.as_array()
        .unwrap()
        .iter()
        .find(|r| r["email"] == who)
        .and_then(|r| r["address"].as_str())
        .unwrap_or_else(|| panic!("no personal address for {who}: {rows}"))
        .to_string()
}

/// Waits until `check` holds for the ticket's JSON (`folio tickets show`).
pub(crate) async fn ticket_until(
    folio: &Folio,
    f: &str,
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> Value {
    wait_for(what, WAIT, || async {
        let t = folio.show(f);
        check(&t).then_some(t)
    })
    .await
}

/// A technician answers a notice of theirs: to its Reply-To, threaded under it.
pub(crate) async fn staff_reply(
    tech: &str,
    notice: &folio::inbound::mail::InboundMail,
    body: &str,
) {
    let reply_to = notice
        .reply_to
        .clone()
        .expect("staff notices carry a tokenised Reply-To");
    assert!(reply_to.contains("+t."), "{reply_to}");
    let parent = notice.message_id.clone().unwrap();
    let id = message_id();
    let raw = mail(
        tech,
        &reply_to,
        &format!("RE: {}", notice.subject),
        body,
        &id,
        &format!("In-Reply-To: <{parent}>\r\nReferences: <{parent}>\r\n"),
    );
    send(tech, &reply_to, &raw).await;
}

fn texts(t: &Value) -> Vec<String> {
    t["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["new_content"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_conversation_by_email() {
    let Desk {
        folio,
        hd,
        tech1,
        tech2,
        ..
    } = staffed_desk().await;
    let alice = unique("alice");
    let carol = unique("carol");
    let stranger = unique("stranger");

    // 1. alice opens a ticket, with carol in CC and a screenshot: routed to tech1, who gets the
    //    full notice with the file.
    let opening = message_id();
    let raw = format!(
        "From: Alicia <{alice}>\r\nTo: {hd}\r\nCc: {carol}\r\nSubject: No puedo entrar al correo\r\n\
         Date: Fri, 27 Nov 2026 10:00:00 -0600\r\nMessage-ID: <{opening}>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\n\
         Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\
         Buenos días,\r\nNo puedo entrar al correo desde ayer.\r\nTeléfono: 722 111 2233\r\n--b\r\n\
         Content-Type: image/png; name=\"error.png\"\r\nContent-Disposition: attachment; filename=\"error.png\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\niVBORw0KGgoAAAANSUhEUgAAAAE=\r\n--b--\r\n"
    );
    send(&alice, &hd, raw.as_bytes()).await;
    let confirmation = inbox(&alice, 1).await.remove(0);
    let f = folio.first_folio().await;
    assert!(confirmation.subject.contains(&f));
    let notice = inbox(&tech1, 1).await.remove(0);
    assert!(
        notice.subject.contains(&f) && notice.subject.contains("Asignado"),
        "{}",
        notice.subject
    );
    for needle in [
        "No puedo entrar al correo desde ayer",
        "722 111 2233",
        &alice,
        "#resuelto",
        // Why, in Spanish and by name: no slug, no address.
        "servicio Correo institucional: \"correo\" en el asunto",
        "asignado a Tomás Técnico: menos folios abiertos",
    ] {
        assert!(
            notice.body_text.contains(needle),
            "notice lacks {needle:?}:\n{}",
            notice.body_text
        );
    }
    assert_eq!(
        notice.attachments.len(),
        1,
        "the requester's file goes to the technician"
    );
    assert_eq!(notice.attachments[0].name, "error.png");
    assert!(
        confirmation.attachments.is_empty(),
        "files are not echoed to the requester"
    );
    let t = folio.show(&f);
    assert_eq!(t["assignee"], tech1.as_str());
    assert_eq!(t["service"], "correo-institucional");
    assert!(
        t["routing"]
            .as_str()
            .unwrap()
            .contains("\"correo\" in subject"),
        "{t}"
    );
    assert!(
        t["participants"].to_string().contains(&carol),
        "carol is a participant: {t}"
    );

    // 2. tech1 answers publicly: alice and carol receive the text, not the quoted notice.
    staff_reply(
        &tech1,
        &notice,
        "Hola Alicia, restablecí su contraseña; intente de nuevo.\n\n> Se le asignó el folio\n> texto citado\n",
    )
    .await;
    let to_alice = inbox(&alice, 2).await;
    let relayed = to_alice
        .iter()
        .find(|m| m.body_text.contains("restablecí su contraseña"))
        .expect("relayed");
    assert!(relayed.subject.contains(&f));
    assert!(!relayed.body_text.contains("texto citado"));
    assert_eq!(
        relayed.from_email.as_deref(),
        Some(hd.as_str()),
        "relayed from the help desk"
    );
    let to_carol = inbox(&carol, 1).await;
    assert!(to_carol[0].body_text.contains("restablecí su contraseña"));

    // 3. alice replies from Outlook: RE:, a mangled folio tag, no In-Reply-To, history below.
    let outlook = format!(
        "Sigue sin funcionar, me dice cuenta bloqueada.\n\n________________________________\n\
         De: Mesa de Ayuda <{hd}>\nEnviado: viernes, 27 de noviembre de 2026 10:05\nPara: {alice}\n\
         Asunto: [Folio {f}] Re: No puedo entrar al correo\n\nHola Alicia, restablecí su contraseña.\n"
    );
    let subject = format!("RE: [folio  {} ] re: No puedo entrar", f.to_lowercase());
    send(
        &alice,
        &hd,
        &mail(&alice, &hd, &subject, &outlook, &message_id(), ""),
    )
    .await;
    let t = ticket_until(&folio, &f, "alice's follow-up on the ticket", |t| {
        t["messages"].as_array().unwrap().len() == 3
    })
    .await;
    assert!(
        texts(&t).contains(&"Sigue sin funcionar, me dice cuenta bloqueada.".to_string()),
        "{:?}",
        texts(&t)
    );
    let follow = inbox(&tech1, 2).await;
    let follow_notice = follow
        .iter()
        .find(|m| m.body_text.contains("cuenta bloqueada"))
        .expect("tech1 told");
    assert!(
        !follow_notice.body_text.contains("restablecí su contraseña"),
        "history stripped"
    );

    // 4. tech1: an internal note. alice gets nothing; tech1 gets a confirmation.
    staff_reply(
        &tech1,
        follow_notice,
        "#nota\nRevisando el directorio activo.",
    )
    .await;
    let tech1_mail = inbox(&tech1, 3).await;
    assert!(tech1_mail
        .iter()
        .any(|m| m.subject.contains("Comandos aplicados")));
    let t = folio.show(&f);
    let note = t["messages"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(note["internal"], true, "{note}");

    // 5. tech1: priority and reassignment; tech2 gets an assignment notice.
    staff_reply(
        &tech1,
        follow_notice,
        "#prioridad alta\n#asignar teresa técnica",
    )
    .await;
    let t = ticket_until(&folio, &f, "priority alta and tech2", |t| {
        t["assignee"] == tech2.as_str()
    })
    .await;
    assert_eq!(t["priority"], "alta");
    let tech2_notice = inbox(&tech2, 1).await.remove(0);
    assert!(
        tech2_notice.body_text.contains("Tomás Técnico le reasignó"),
        "says who reassigned it, by name"
    );

    // An unknown command changes nothing and tells tech1 what is valid.
    staff_reply(&tech1, follow_notice, "#borrar\nTexto").await;
    let tech1_mail = inbox(&tech1, 5).await;
    let rejected = tech1_mail
        .iter()
        .find(|m| m.subject.contains("no aplicados"))
        .expect("rejection");
    assert!(
        rejected.body_text.contains("no existe el comando #borrar")
            && rejected.body_text.contains("#reabrir")
    );

    // 6. tech2 resolves; alice is told, with the resolution.
    staff_reply(
        &tech2,
        &tech2_notice,
        "#resuelto Se desbloqueó la cuenta en el directorio.",
    )
    .await;
    let t = ticket_until(&folio, &f, "resolved", |t| t["status"] == "resolved").await;
    assert_eq!(t["assignee"], tech2.as_str());
    let to_alice = inbox(&alice, 3).await;
    let resolved = to_alice
        .iter()
        .find(|m| m.subject.contains("Resuelto"))
        .expect("resolution notice");
    assert!(resolved.body_text.contains("Se desbloqueó la cuenta"));
    assert!(
        !resolved.body_text.contains("#resuelto"),
        "command lines never reach the requester"
    );
    // Nothing of the note, the commands or the rejection reached alice or carol.
    assert_eq!(fetch_all(&alice, "INBOX").await.len(), 3);
    assert_eq!(
        fetch_all(&carol, "INBOX").await.len(),
        2,
        "carol: the reply and the resolution"
    );

    // 7. A forged mail in tech2's name, threaded but not sent to the tokenised address: its
    //    #cerrar is ignored and a security event is stored.
    let conf_id = confirmation.message_id.clone().unwrap();
    send(
        &tech2,
        &hd,
        &mail(
            &tech2,
            &hd,
            &format!("RE: [Folio {f}]"),
            "#cerrar\nCerrado.",
            &message_id(),
            &format!("In-Reply-To: <{conf_id}>\r\n"),
        ),
    )
    .await;
    let t = ticket_until(&folio, &f, "the forged mail recorded", |t| {
        t["events"].to_string().contains("without proof")
    })
    .await;
    assert_eq!(
        t["status"], "resolved",
        "a forged #cerrar must not close the ticket"
    );

    // 8. Status: alice gets it; a stranger gets a reply that reveals nothing.
    send(
        &alice,
        &hd,
        &mail(
            &alice,
            &hd,
            "Consulta",
            &format!("estado {f}"),
            &message_id(),
            "",
        ),
    )
    .await;
    let to_alice = inbox(&alice, 4).await;
    let status = to_alice
        .iter()
        .find(|m| m.subject.contains("Estado"))
        .expect("status reply");
    assert!(
        status.body_text.contains("Resuelto") && status.body_text.contains("Teresa"),
        "{}",
        status.body_text
    );
    send(
        &stranger,
        &hd,
        &mail(
            &stranger,
            &hd,
            "Consulta",
            &format!("estado {f}"),
            &message_id(),
            "",
        ),
    )
    .await;
    let denied = inbox(&stranger, 1).await.remove(0);
    assert!(
        !denied.body_text.contains("No puedo entrar") && !denied.body_text.contains("Teresa"),
        "{}",
        denied.body_text
    );
    assert_eq!(folio.tickets().len(), 1, "queries open no tickets");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phone_notes_forwards_and_bounces() {
    let Desk {
        folio,
        hd,
        tech1,
        tech2: _,
        agent1,
        ..
    } = staffed_desk().await;
    let bob = unique("bob");
    let dave = unique("dave");

    // A phone note from agent1 for bob, sent to agent1's personal address (the proof): bob is
    // the requester, agent1 gets a copy with the folio.
    let agent1_address = personal_address(&folio, &agent1);
    assert!(agent1_address.contains("+a."), "{agent1_address}");
    let note = format!(
        "Nota de llamada\n\nNombre: Bob Benítez\nCorreo: {bob}\nTeléfono: 722 555 0101\n\
         Detalle: No puedo entrar al correo.\nLe aparece error 0x80.\n"
    );
    send(
        &agent1,
        &agent1_address,
        &mail(
            &agent1,
            &agent1_address,
            "Llamada",
            &note,
            &message_id(),
            "",
        ),
    )
    .await;
    let to_bob = inbox(&bob, 1).await.remove(0);
    let f = folio.first_folio().await;
    assert!(to_bob.subject.contains(&f));
    let copy = inbox(&agent1, 1).await.remove(0);
    assert!(
        copy.subject.contains(&f) && copy.body_text.contains("departamento"),
        "missing fields listed: {}",
        copy.body_text
    );
    let t = folio.show(&f);
    assert_eq!(t["channel"], "phone");
    assert_eq!(t["requester_email"], bob.as_str());
    assert_eq!(t["opened_by"], agent1.as_str());
    assert_eq!(t["assignee"], tech1.as_str());

    // tech1 forwards dave's mail (Outlook "RV:"): the ticket is dave's.
    let fwd = format!(
        "Les reenvío lo que me llegó.\n\n________________________________\nDe: Dave Domínguez <{dave}>\n\
         Enviado: jueves, 26 de noviembre de 2026 18:00\nPara: {tech1}\nAsunto: Falla de VPN\n\n\
         La VPN se desconecta cada hora.\n"
    );
    let tech1_address = personal_address(&folio, &tech1);
    send(
        &tech1,
        &tech1_address,
        &mail(
            &tech1,
            &tech1_address,
            "RV: Falla de VPN",
            &fwd,
            &message_id(),
            "",
        ),
    )
    .await;
    let to_dave = inbox(&dave, 1).await.remove(0);
    let g = folio
        .tickets()
        .iter()
        .find(|t| t["requester_email"] == dave.as_str())
        .expect("dave's ticket")["folio"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(to_dave.subject.contains(&g));
    assert_eq!(folio.show(&g)["subject"], "Falla de VPN");

    // bob's confirmation bounces: linked, the address marked, the technician told.
    let ours = to_bob.message_id.clone().unwrap();
    let dsn = format!(
        "From: MAILER-DAEMON@example.test (Mail Delivery System)\r\nTo: {hd}\r\n\
         Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <{}>\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n\
         --b\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered: mailbox full.\r\n\
         --b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; example.test\r\n\r\n\
         Final-Recipient: rfc822; {bob}\r\nAction: failed\r\nStatus: 5.2.2\r\n\r\n\
         --b\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: {hd}\r\nTo: {bob}\r\nMessage-ID: <{ours}>\r\n\r\n--b--\r\n",
        message_id()
    );
    send("", &hd, dsn.as_bytes()).await;
    let t = ticket_until(&folio, &f, "the bounce on bob's ticket", |t| {
        t["events"].to_string().contains("bounced")
    })
    .await;
    assert!(t["events"].to_string().contains(&bob));
    // tech1 holds: bob's assignment, dave's assignment, the copy of dave's confirmation, and
    // the bounce notice.
    let tech1_mail = inbox(&tech1, 4).await;
    assert!(
        tech1_mail.iter().any(|m| m.subject.contains("rebotado")),
        "technician told of the bounce"
    );
    // bob writes again: a ticket, but nothing is mailed to the bouncing address.
    send(
        &bob,
        &hd,
        &mail(
            &bob,
            &hd,
            "Otra cosa",
            "La impresora no imprime.",
            &message_id(),
            "",
        ),
    )
    .await;
    // Nothing is queued to the bouncing address; the suppression is recorded on the ticket.
    let second = wait_for("bob's second ticket", WAIT, || async {
        folio
            .tickets()
            .iter()
            .find(|t| t["requester_email"] == bob.as_str() && t["folio"] != f.as_str())
            .map(|t| t["folio"].as_str().unwrap().to_string())
    })
    .await;
    let t = folio.show(&second);
    let queued_to_bob = t["outgoing"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["to"] == bob.as_str())
        .count();
    assert_eq!(
        queued_to_bob, 0,
        "no mail queued to a bouncing address: {t}"
    );
    assert!(t["events"].to_string().contains("bounced recently"), "{t}");
    assert_eq!(fetch_all(&bob, "INBOX").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unproven_phone_note_mails_no_one_but_its_sender() {
    let Desk {
        folio,
        hd,
        tech1: _,
        tech2: _,
        agent1,
        ..
    } = staffed_desk().await;
    let victim = unique("victim");
    // A forged (or careless) note: From the agent, to the plain help-desk address.
    let note = format!("Nombre: Víctima\nCorreo: {victim}\nDetalle: Compre aquí: http://x.test\n");
    send(
        &agent1,
        &hd,
        &mail(&agent1, &hd, "Llamada", &note, &message_id(), ""),
    )
    .await;
    // The ticket is the sender's own request, with a security event; the sender (the real
    // agent's mailbox) gets its confirmation, the Correo: address nothing.
    let to_agent = inbox(&agent1, 1).await.remove(0);
    let f = folio.first_folio().await;
    assert!(to_agent.subject.contains(&f), "{}", to_agent.subject);
    let t = folio.show(&f);
    assert_eq!(t["channel"], "email");
    assert_eq!(t["requester_email"], agent1.as_str());
    assert!(
        t["events"].to_string().contains("without proof"),
        "a security event: {t}"
    );
    assert!(
        t["outgoing"]
            .as_array()
            .unwrap()
            .iter()
            .all(|o| o["to"] != victim.as_str()),
        "{t}"
    );
    assert_eq!(fetch_all(&victim, "INBOX").await.len(), 0);
}
