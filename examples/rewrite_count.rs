// Scratch (not committed): loops parse (+ rewrite) so callgrind totals can be diffed per iteration.
use spawngate::http1::request::parse_request;
use spawngate::http1::rewrite::{write_request, ForwardInfo, ForwardPlan};
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

const BROWSER: &[u8] = b"GET /articles/2024/spawngate?utm_source=feed&page=2 HTTP/1.1\r\n\
Host: app.example.com\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n\
Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n\
Accept-Language: en-US,en;q=0.5\r\n\
Accept-Encoding: gzip, deflate, br, zstd\r\n\
Referer: https://app.example.com/articles\r\n\
Cookie: session=4f1c2b7a9e8d6c5b4a3f2e1d0c9b8a7f; theme=dark; consent=1\r\n\
Connection: keep-alive\r\n\
Upgrade-Insecure-Requests: 1\r\n\
Sec-Fetch-Dest: document\r\n\
Sec-Fetch-Mode: navigate\r\n\
Sec-Fetch-Site: same-origin\r\n\
Priority: u=0, i\r\n\r\n";
const MINIMAL: &[u8] = b"GET / HTTP/1.1\r\nHost: app.example.com\r\n\r\n";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let text = if args[1] == "browser" {
        BROWSER
    } else {
        MINIMAL
    };
    let rewrite = args[2] == "rewrite";
    let n: usize = args[3].parse().unwrap();
    let mut out = Vec::with_capacity(4096);
    for _ in 0..n {
        let head = parse_request(black_box(text)).unwrap().unwrap();
        if rewrite {
            out.clear();
            let info = ForwardInfo {
                client_ip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)).into(),
                request_id: b"0123456789abcdef0123456789abcdef",
            };
            write_request(text, &head, &ForwardPlan::default(), &info, &mut out);
            black_box(&out);
        }
        black_box(&head);
    }
}
