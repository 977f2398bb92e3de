//! A terminal chat: logs in, connects, prints what happens in your conversations, and sends
//! each line you type to one conversation.
//!
//! ```sh
//! cargo run -p chat-client --example chat -- http://127.0.0.1:8000 alice 'correct horse battery' <conversation id>
//! ```
//!
//! Cut the network for a while: the connection comes back by itself, prints what was said
//! meanwhile, and sends what you typed while it was down.

use chat_client::events::{Event, SendMessage};
use chat_client::live::{Options, Status};
use chat_client::{Client, Live, Update};
use tokio::io::{AsyncBufReadExt, BufReader};
use uuid::Uuid;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, username, password, conversation] = args.as_slice() else {
        eprintln!("usage: chat <server url> <username> <password> <conversation id>");
        std::process::exit(2);
    };
    let conversation: Uuid = conversation.parse()?;

    let client = Client::new(url)?;
    client.login(username, password).await?;
    let me = client.me().await?;
    let mut live = Live::connect(client, Options::default()).await?;
    eprintln!("connected as {}; type a line to send it", me.username);

    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    loop {
        tokio::select! {
            line = lines.next_line() => match line? {
                Some(line) if !line.trim().is_empty() => {
                    live.send_message(SendMessage::to_conversation(conversation, line))?;
                }
                Some(_) => {}
                // End of input: close, then print what is left until the end.
                None => live.close(),
            },
            update = live.next() => match update {
                Some(update) => show(&update, me.id),
                None => return Ok(()),
            },
        }
    }
}

fn show(update: &Update, me: Uuid) {
    match update {
        Update::Event(Event::NewMessage(event)) => {
            let message = &event.message;
            let who = if message.sender_id == me {
                "you".to_owned()
            } else {
                message.sender_id.to_string()
            };
            let text = message.content.as_deref().unwrap_or("(deleted)");
            println!("[{}] {who}: {text}", message.created_at.format("%H:%M"));
        }
        Update::Event(Event::MessageUpdated(event)) => println!(
            "(edited) {}: {}",
            event.message.sender_id,
            event.message.content.as_deref().unwrap_or("")
        ),
        Update::Event(Event::MessageDeleted(event)) => {
            println!("(a message of {} was deleted)", event.message.sender_id);
        }
        Update::Event(Event::UserTyping(typing)) if typing.is_typing => {
            println!("({} is typing)", typing.user_id);
        }
        Update::Event(Event::Error(error)) => {
            eprintln!("refused: {} ({})", error.detail, error.code)
        }
        Update::Event(_) => {}
        Update::Status(Status::Connected { .. }) => eprintln!("(connected)"),
        Update::Status(Status::Disconnected { reason }) => eprintln!("(disconnected: {reason})"),
        Update::Status(Status::Reconnecting { attempt, delay }) => {
            eprintln!("(reconnecting in {delay:?}, attempt {attempt})");
        }
        Update::Status(Status::Ended(reason)) => eprintln!("(ended: {reason:?})"),
    }
}
