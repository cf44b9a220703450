//! Email delivery over a real SMTP conversation with the test sink
//! (`tests::smtp_sink`): confirmation mail, alert mail content per
//! marketplace, one digest for several alerts, retries and dead letters.

use backend::notify::compose::{AlertKind, AlertNotice};
use backend::notify::{
    Channel, ChannelConfig, Channels, DeliveryOutcome, DigestBatch, DigestBatcher, DigestConfig,
    RetryPolicy, SmtpConfig, SmtpUrl, WebhookConfig,
};
use tests::smtp_sink::{ReceivedMail, SmtpSink, Stage};
use wasm_core::asin::Asin;
use wasm_core::marketplace::Marketplace;
use wasm_core::types::Condition;

const PUBLIC_URL: &str = "https://pricewatch.example";
const NOW: i64 = 1_763_800_000_000;

fn channels(sink: &SmtpSink, retry: RetryPolicy) -> Channels {
    let url = SmtpUrl::parse(&sink.url()).expect("sink url");
    Channels::new(
        Some(SmtpConfig::new(
            url,
            "pricewatch <alerts@pricewatch.example>",
        )),
        WebhookConfig::default(),
        ChannelConfig {
            public_url: PUBLIC_URL.into(),
            retry,
        },
    )
    .expect("channels")
}

fn notice(
    id: i64,
    marketplace: Marketplace,
    asin: &str,
    title: &str,
    kind: AlertKind,
    old: Option<u64>,
    new: Option<u64>,
) -> AlertNotice {
    AlertNotice {
        alert_id: id,
        watch_id: id * 10,
        asin: Asin::parse(asin).expect("asin"),
        marketplace,
        condition: Condition::New,
        kind,
        title: title.into(),
        old_price_minor: old,
        new_price_minor: new,
        created_at: NOW,
    }
}

fn batch(address: &str, notices: Vec<AlertNotice>) -> DigestBatch {
    DigestBatch {
        address: address.into(),
        unsubscribe_token: "unsub-token-1".into(),
        notices,
        first_at: NOW,
    }
}

fn only_message(sink: &SmtpSink) -> ReceivedMail {
    let mut messages = sink.messages();
    assert_eq!(messages.len(), 1, "{messages:#?}");
    messages.remove(0)
}

#[tokio::test]
async fn confirmation_mail() {
    let sink = SmtpSink::start().expect("sink");
    let ch = channels(&sink, RetryPolicy::default());
    let outcome = ch
        .deliver_confirmation("new.user@example.org", "conf_TOKEN-42", 1, NOW)
        .await;
    assert_eq!(outcome, DeliveryOutcome::Delivered);

    let mail = only_message(&sink);
    assert_eq!(mail.mail_from, "alerts@pricewatch.example");
    assert_eq!(mail.rcpt_to, vec!["new.user@example.org".to_string()]);
    assert_eq!(
        mail.header("Subject").as_deref(),
        Some("Confirm this address for pricewatch alerts")
    );
    assert_eq!(mail.header("To").as_deref(), Some("new.user@example.org"));
    let text = mail.part("text/plain").expect("plain part");
    assert!(
        text.contains("To confirm this address for pricewatch alerts, open this link:\r\nhttps://pricewatch.example/v1/email/confirm?token=conf_TOKEN-42\r\n")
            || text.contains("To confirm this address for pricewatch alerts, open this link:\nhttps://pricewatch.example/v1/email/confirm?token=conf_TOKEN-42\n"),
        "{text}"
    );
    let html = mail.part("text/html").expect("html part");
    assert!(html
        .contains("<a href=\"https://pricewatch.example/v1/email/confirm?token=conf_TOKEN-42\">"));
    assert_eq!(
        mail.header("List-Unsubscribe"),
        None,
        "not a subscription yet"
    );
    assert_eq!(ch.metrics().counts(Channel::Email).delivered, 1);
}

/// The plain part with CRLF turned back into LF (quoted-printable and
/// 7bit bodies travel with CRLF line ends).
fn plain(mail: &ReceivedMail) -> String {
    mail.part("text/plain")
        .expect("plain part")
        .replace("\r\n", "\n")
}

#[tokio::test]
async fn alert_mail_content_per_marketplace() {
    let sink = SmtpSink::start().expect("sink");
    let ch = channels(&sink, RetryPolicy::default());
    // (marketplace, asin, title, old, new, old shown, new shown)
    let cases = [
        (
            Marketplace::AMAZON_COM,
            "B0ECHODOT5",
            "Echo Dot (5th Gen)",
            149_999u64,
            123_456u64,
            "$1,499.99",
            "$1,234.56",
        ),
        (
            Marketplace::AMAZON_DE,
            "B0KAFFEE01",
            "Kaffeemühle Edelstahl",
            149_999,
            123_456,
            "1.499,99\u{a0}€",
            "1.234,56\u{a0}€",
        ),
        (
            Marketplace::AMAZON_CO_JP,
            "B0JAPAN001",
            "ワイヤレスイヤホン",
            2_980,
            1_598,
            "￥2,980",
            "￥1,598",
        ),
    ];
    for (i, (mp, asin, title, old, new, old_shown, new_shown)) in cases.into_iter().enumerate() {
        let address = format!("user{i}@example.org");
        let n = notice(
            i as i64 + 1,
            mp,
            asin,
            title,
            AlertKind::TargetReached,
            Some(old),
            Some(new),
        );
        let outcome = ch
            .deliver_email_batch(&batch(&address, vec![n]), 1, NOW)
            .await;
        assert_eq!(outcome, DeliveryOutcome::Delivered, "{mp}");

        let mail = sink
            .messages()
            .into_iter()
            .find(|m| m.rcpt_to == vec![address.clone()])
            .expect("message for this address");
        assert_eq!(
            mail.header("Subject"),
            Some(format!("Target price reached: {title}")),
            "{mp}"
        );
        assert!(mail
            .header("Content-Type")
            .is_some_and(|c| c.starts_with("multipart/alternative")));
        assert_eq!(
            mail.raw_header("List-Unsubscribe").as_deref(),
            Some("<https://pricewatch.example/v1/email/unsubscribe?token=unsub-token-1>")
        );
        assert_eq!(
            mail.raw_header("List-Unsubscribe-Post").as_deref(),
            Some("List-Unsubscribe=One-Click")
        );
        let text = plain(&mail);
        let product = format!("https://pricewatch.example/p/{}/{asin}", mp.domain());
        assert!(
            text.contains(&format!(
                "Target price reached: {title} is now {new_shown} (was {old_shown}).\nNow: {new_shown}\nBefore: {old_shown}\n"
            )),
            "{mp}: {text}"
        );
        assert!(
            text.contains(&format!("Price history: {product}\n")),
            "{text}"
        );
        assert!(text.contains(
            "Unsubscribe: https://pricewatch.example/v1/email/unsubscribe?token=unsub-token-1\n"
        ));
        let html = mail.part("text/html").expect("html part");
        assert!(
            html.contains(&format!("<a href=\"{product}\">{title}</a>")),
            "{html}"
        );
        assert!(html.contains(&format!("<b>{new_shown}</b>")), "{html}");
    }
    assert_eq!(sink.messages().len(), 3);
}

#[tokio::test]
async fn price_drop_and_correction_wording() {
    let sink = SmtpSink::start().expect("sink");
    let ch = channels(&sink, RetryPolicy::default());
    let drop = notice(
        1,
        Marketplace::AMAZON_DE,
        "B0KAFFEE01",
        "Kaffeemühle",
        AlertKind::PriceDrop,
        Some(5_000),
        Some(3_999),
    );
    let correction = notice(
        2,
        Marketplace::AMAZON_COM,
        "B0ECHODOT5",
        "Echo Dot",
        AlertKind::Correction,
        Some(999),
        Some(4_999),
    );
    for n in [drop, correction] {
        let outcome = ch
            .deliver_email_batch(&batch("a@example.org", vec![n]), 1, NOW)
            .await;
        assert_eq!(outcome, DeliveryOutcome::Delivered);
    }
    let messages = sink.messages();
    assert_eq!(
        messages[0].header("Subject").as_deref(),
        Some("Price down 20%: Kaffeemühle")
    );
    assert!(plain(&messages[0])
        .contains("Price drop of 20%: Kaffeemühle went from 50,00\u{a0}€ to 39,99\u{a0}€."));
    assert_eq!(
        messages[1].header("Subject").as_deref(),
        Some("Price correction: Echo Dot")
    );
    assert!(plain(&messages[1]).contains(
        "Correction for Echo Dot: the price we reported was wrong; the verified price is $49.99 (we reported $9.99).\nVerified price: $49.99\nWe reported: $9.99\n"
    ));
}

#[tokio::test]
async fn three_alerts_within_a_minute_are_one_message() {
    let sink = SmtpSink::start().expect("sink");
    let ch = channels(&sink, RetryPolicy::default());
    let mut digests = DigestBatcher::new(DigestConfig::default());
    let titles = ["First gadget", "Second gadget", "Third gadget"];
    for (i, title) in titles.iter().enumerate() {
        let n = notice(
            i as i64 + 1,
            Marketplace::AMAZON_COM,
            "B0ECHODOT5",
            title,
            AlertKind::TargetReached,
            Some(2_000),
            Some(1_000 + i as u64),
        );
        assert!(digests.push("many@example.org", "tok", n, NOW + i as i64 * 20_000));
    }
    // Another address's alert must not join the digest.
    let other = notice(
        9,
        Marketplace::AMAZON_COM,
        "B0ECHODOT5",
        "Other",
        AlertKind::BackInStock,
        None,
        Some(500),
    );
    digests.push("other@example.org", "tok2", other, NOW + 50_000);

    assert!(
        digests.take_due(NOW + 59_999).is_empty(),
        "held for a minute"
    );
    let due = digests.take_due(NOW + 60_000);
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].alert_ids(), vec![1, 2, 3]);
    for b in &due {
        assert_eq!(
            ch.deliver_email_batch(b, 1, NOW + 60_000).await,
            DeliveryOutcome::Delivered
        );
    }

    let mail = only_message(&sink);
    assert_eq!(mail.rcpt_to, vec!["many@example.org".to_string()]);
    assert_eq!(
        mail.header("Subject").as_deref(),
        Some("3 price alerts from pricewatch")
    );
    let text = plain(&mail);
    assert!(text.starts_with("3 price alerts for you:\n"), "{text}");
    for (i, title) in titles.iter().enumerate() {
        let line = format!("Target price reached: {title} is now $10.0{i} (was $20.00).");
        assert!(text.contains(&line), "{line} in {text}");
    }
    assert_eq!(text.matches("Unsubscribe: ").count(), 1);
    assert_eq!(digests.len(), 1, "the other address still waits");
}

#[tokio::test]
async fn transient_4xx_is_retried_then_delivered() {
    let sink = SmtpSink::start().expect("sink");
    let ch = channels(&sink, RetryPolicy::default());
    sink.fail(Stage::Data, 451, 1);
    let b = batch(
        "retry@example.org",
        vec![notice(
            1,
            Marketplace::AMAZON_COM,
            "B0ECHODOT5",
            "Echo",
            AlertKind::TargetReached,
            Some(2),
            Some(1),
        )],
    );

    let first = ch.deliver_email_batch(&b, 1, NOW).await;
    match first {
        // Default policy: 30 s ± 20 % after the first attempt.
        DeliveryOutcome::Retry { at } => {
            assert!((NOW + 24_000..=NOW + 36_000).contains(&at), "{at}")
        }
        other => panic!("expected a retry, got {other:?}"),
    }
    assert!(sink.messages().is_empty());

    // The worker comes back at `at` (a test clock: no real waiting).
    let second = ch.deliver_email_batch(&b, 2, NOW + 30_000).await;
    assert_eq!(second, DeliveryOutcome::Delivered);
    assert_eq!(
        only_message(&sink).rcpt_to,
        vec!["retry@example.org".to_string()]
    );
    assert_eq!(sink.transactions(), 2);
    let counts = ch.metrics().counts(Channel::Email);
    assert_eq!(
        (counts.retries, counts.delivered, counts.dead_letters),
        (1, 1, 0)
    );
}

#[tokio::test]
async fn permanent_5xx_dead_letters_after_max_attempts() {
    let sink = SmtpSink::start().expect("sink");
    let ch = channels(&sink, RetryPolicy::immediate(4));
    sink.fail(Stage::Data, 554, usize::MAX);
    let b = batch(
        "dead@example.org",
        vec![notice(
            1,
            Marketplace::AMAZON_COM,
            "B0ECHODOT5",
            "Echo",
            AlertKind::TargetReached,
            Some(2),
            Some(1),
        )],
    );
    let mut outcomes = Vec::new();
    let mut attempt = 1;
    loop {
        let outcome = ch.deliver_email_batch(&b, attempt, NOW).await;
        let done = outcome.is_final();
        outcomes.push(outcome);
        if done || attempt > 10 {
            break;
        }
        attempt += 1;
    }
    assert_eq!(outcomes.len(), 4, "{outcomes:?}");
    for o in &outcomes[..3] {
        assert_eq!(o, &DeliveryOutcome::Retry { at: NOW });
    }
    match &outcomes[3] {
        DeliveryOutcome::DeadLetter { reason } => {
            assert!(reason.starts_with("gave up after 4 attempts"), "{reason}");
            assert!(reason.contains("554"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(sink.transactions(), 4);
    assert!(sink.messages().is_empty());
    let counts = ch.metrics().counts(Channel::Email);
    assert_eq!((counts.retries, counts.dead_letters), (3, 1));
    assert!(ch
        .metrics()
        .render_prometheus()
        .contains("pricewatch_alert_dead_letters_total{channel=\"email\"} 1\n"));
}

#[tokio::test]
async fn unknown_mailbox_dead_letters_at_once() {
    let sink = SmtpSink::start().expect("sink");
    let ch = channels(&sink, RetryPolicy::default());
    sink.fail(Stage::Rcpt, 550, 1);
    let b = batch(
        "nobody@example.org",
        vec![notice(
            1,
            Marketplace::AMAZON_COM,
            "B0ECHODOT5",
            "Echo",
            AlertKind::TargetReached,
            Some(2),
            Some(1),
        )],
    );
    match ch.deliver_email_batch(&b, 1, NOW).await {
        DeliveryOutcome::DeadLetter { reason } => assert!(reason.contains("550"), "{reason}"),
        other => panic!("{other:?}"),
    }
    // The sink is healthy again and the next mail goes through on the same
    // mailer (a broken pooled connection must not be reused).
    let ok = ch
        .deliver_email_batch(&batch("somebody@example.org", b.notices.clone()), 1, NOW)
        .await;
    assert_eq!(ok, DeliveryOutcome::Delivered);
}

#[tokio::test]
async fn unreachable_server_is_retried() {
    // A port nobody listens on: bind, note the port, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let url = SmtpUrl::parse(&format!("smtp://127.0.0.1:{port}?tls=none")).expect("url");
    let ch = Channels::new(
        Some(SmtpConfig::new(url, "alerts@pricewatch.example")),
        WebhookConfig::default(),
        ChannelConfig {
            public_url: PUBLIC_URL.into(),
            retry: RetryPolicy::immediate(2),
        },
    )
    .expect("channels");
    let outcome = ch.deliver_confirmation("a@example.org", "t", 1, NOW).await;
    assert_eq!(outcome, DeliveryOutcome::Retry { at: NOW });
}

/// The sink itself, spoken to by hand: command order, RSET, HELO, and
/// dot-unstuffing of DATA.
#[tokio::test]
async fn sink_speaks_smtp() {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let sink = SmtpSink::start().expect("sink");
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", sink.port()))
        .await
        .expect("connect");
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    macro_rules! next {
        () => {
            lines.next_line().await.expect("read").expect("line")
        };
    }
    assert!(next!().starts_with("220 "));

    let script: &[(&str, &str)] = &[
        ("HELO client.example", "250 "),
        ("RCPT TO:<x@example.org>", "503 "),
        ("MAIL FROM:<a@example.org>", "250 "),
        ("MAIL FROM:<b@example.org>", "503 "),
        ("RSET", "250 "),
        ("DATA", "503 "),
        ("MAIL FROM:<a@example.org> SIZE=100", "250 "),
        ("RCPT TO:<x@example.org>", "250 "),
        ("RCPT TO:<y@example.org>", "250 "),
        ("NOOP", "250 "),
        ("BOGUS", "502 "),
        ("DATA", "354 "),
    ];
    for (command, expected) in script {
        write
            .write_all(format!("{command}\r\n").as_bytes())
            .await
            .expect("write");
        let reply = next!();
        assert!(reply.starts_with(expected), "{command} -> {reply}");
    }
    write
        .write_all(b"Subject: dots\r\n\r\n..leading dot\r\n...two\r\nplain\r\n.\r\n")
        .await
        .expect("write");
    assert!(next!().starts_with("250 "));
    write.write_all(b"QUIT\r\n").await.expect("write");
    assert!(next!().starts_with("221 "));

    let mail = only_message(&sink);
    assert_eq!(mail.mail_from, "a@example.org");
    assert_eq!(mail.rcpt_to, vec!["x@example.org", "y@example.org"]);
    assert_eq!(
        mail.data,
        "Subject: dots\r\n\r\n.leading dot\r\n..two\r\nplain\r\n"
    );
    assert_eq!(mail.header("Subject").as_deref(), Some("dots"));
    assert_eq!(sink.transactions(), 3);
}

#[tokio::test]
async fn smtps_with_a_private_ca() {
    let sink = SmtpSink::start_tls().expect("tls sink");
    let url = SmtpUrl::parse(&sink.url()).expect("url");
    assert!(sink.url().starts_with("smtps://127.0.0.1:"));
    let config = |ca: Option<String>| {
        let mut c = SmtpConfig::new(url.clone(), "alerts@pricewatch.example");
        c.extra_root_pem = ca;
        Channels::new(
            Some(c),
            WebhookConfig::default(),
            ChannelConfig {
                public_url: PUBLIC_URL.into(),
                retry: RetryPolicy::immediate(2),
            },
        )
        .expect("channels")
    };

    // Without the CA the certificate is refused and nothing is sent.
    let untrusting = config(None);
    let outcome = untrusting
        .deliver_confirmation("tls@example.org", "t1", 1, NOW)
        .await;
    assert_eq!(outcome, DeliveryOutcome::Retry { at: NOW });
    assert!(sink.messages().is_empty());

    // With it, the whole conversation runs inside TLS.
    let trusting = config(sink.ca_pem().map(str::to_string));
    let outcome = trusting
        .deliver_confirmation("tls@example.org", "t2", 1, NOW)
        .await;
    assert_eq!(outcome, DeliveryOutcome::Delivered);
    let mail = only_message(&sink);
    assert_eq!(mail.rcpt_to, vec!["tls@example.org".to_string()]);
    assert!(plain(&mail).contains("/v1/email/confirm?token=t2\n"));
}
