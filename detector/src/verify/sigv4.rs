//! AWS Signature Version 4, as AWS documents it
//! (<https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html>): the
//! headers that sign a request, so that `sts:GetCallerIdentity` proves an access key pair
//! without sending its secret.
use chrono::{DateTime, Utc};
use ring::{digest, hmac};

pub struct Unsigned<'a> {
    pub method: &'a str,
    pub host: &'a str,
    /// `/path?query`, already encoded.
    pub target: &'a str,
    /// Lower-case names.
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
}

pub struct Credentials<'a> {
    pub access_key_id: &'a str,
    pub secret_access_key: &'a str,
    pub region: &'a str,
    pub service: &'a str,
}

/// The headers to add: `x-amz-date` and `authorization`. Every header given is signed, and
/// `host`.
pub fn sign(
    request: &Unsigned<'_>,
    credentials: &Credentials<'_>,
    now: DateTime<Utc>,
) -> Vec<(String, String)> {
    let amz_date = now.format("%Y%m%dT%H%M%SZ").to_string();
    let date = now.format("%Y%m%d").to_string();
    let (path, query) = match request.target.split_once('?') {
        Some((p, q)) => (p, q),
        None => (request.target, ""),
    };
    let mut query: Vec<&str> = query.split('&').filter(|p| !p.is_empty()).collect();
    query.sort_unstable();
    let mut headers: Vec<(String, String)> = request
        .headers
        .iter()
        .map(|(n, v)| (n.to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    headers.push(("host".into(), request.host.to_string()));
    headers.push(("x-amz-date".into(), amz_date.clone()));
    headers.sort();
    let canonical_headers: String = headers.iter().map(|(n, v)| format!("{n}:{v}\n")).collect();
    let signed_headers = headers
        .iter()
        .map(|(n, _)| n.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let canonical = format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        request.method,
        if path.is_empty() { "/" } else { path },
        query
            .iter()
            .map(|p| if p.contains('=') {
                p.to_string()
            } else {
                format!("{p}=")
            })
            .collect::<Vec<_>>()
            .join("&"),
        canonical_headers,
        signed_headers,
        hex::encode(digest::digest(&digest::SHA256, request.body))
    );
    let scope = format!(
        "{date}/{}/{}/aws4_request",
        credentials.region, credentials.service
    );
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex::encode(digest::digest(&digest::SHA256, canonical.as_bytes()))
    );
    let mac = |key: &[u8], data: &str| {
        hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data.as_bytes())
            .as_ref()
            .to_vec()
    };
    let k_date = mac(
        format!("AWS4{}", credentials.secret_access_key).as_bytes(),
        &date,
    );
    let k_region = mac(&k_date, credentials.region);
    let k_service = mac(&k_region, credentials.service);
    let k_signing = mac(&k_service, "aws4_request");
    let signature = hex::encode(mac(&k_signing, &to_sign));
    vec![
        ("x-amz-date".into(), amz_date),
        (
            "authorization".into(),
            format!(
                "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={signature}",
                credentials.access_key_id
            ),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    /// AWS's published SigV4 test suite, case `get-vanilla`, with the suite's documented
    /// example credentials (built here, as every key in this project's tests).
    #[test]
    fn signs_the_published_get_vanilla_case() {
        let secret = ["wJalrXUtnFEMI/K7MDENG", "+bPxRfiCYEXAMPLEKEY"].concat();
        let headers = sign(
            &Unsigned {
                method: "GET",
                host: "example.amazonaws.com",
                target: "/",
                headers: &[],
                body: b"",
            },
            &Credentials {
                access_key_id: "AKIDEXAMPLE",
                secret_access_key: &secret,
                region: "us-east-1",
                service: "service",
            },
            Utc.with_ymd_and_hms(2015, 8, 30, 12, 36, 0).unwrap(),
        );
        assert_eq!(headers[0].1, "20150830T123600Z");
        assert_eq!(
            headers[1].1,
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
             SignedHeaders=host;x-amz-date, \
             Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        );
    }
}
