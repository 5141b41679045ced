<?php
// Signatures both ways: the sidecar signs its calls to this app with APP_SECRET, and this
// app signs its inbound calls to the sidecar with the installation's inbound secret.
// Both are hex(HMAC-SHA256(secret, "<unix seconds>.<raw body>")).

declare(strict_types=1);

// [readme:php-verify]
// The raw body when the sidecar signed this call, null otherwise.
function signed_by_sidecar(string $appSecret): ?string {
    $ts   = $_SERVER['HTTP_X_SIDECAR_TIMESTAMP'] ?? '';
    $sig  = $_SERVER['HTTP_X_SIDECAR_SIGNATURE'] ?? '';
    $body = file_get_contents('php://input');     // the raw bytes, before json_decode
    if (!preg_match('/^[0-9]{1,15}$/', $ts)) return null;
    $age = time() - (int) $ts;
    if ($age > 300 || $age < -60) return null;    // 5 minutes old at most, 1 minute ahead
    $expected = hash_hmac('sha256', $ts . '.' . $body, $appSecret);
    return hash_equals($expected, $sig) ? $body : null;   // constant time
}
// [/readme:php-verify]

// [readme:php-inbound]
// POST one event to the sidecar's /inbound/<action>, signed with the installation's
// inbound secret. Returns [HTTP status, decoded answer].
function send_inbound(string $sidecarUrl, string $action, array $event,
                      string $installationId, string $inboundSecret, string $idempotencyKey): array {
    $body = json_encode($event);
    $ts = (string) time();
    $signature = hash_hmac('sha256', $ts . '.' . $body, $inboundSecret);
    $context = stream_context_create(['http' => [
        'method' => 'POST',
        'header' => implode("\r\n", [
            'Content-Type: application/json',
            'X-Integration-Installation: ' . $installationId,
            'X-Integration-Timestamp: ' . $ts,
            'X-Integration-Signature: ' . $signature,
            'X-Idempotency-Key: ' . $idempotencyKey,
        ]),
        'content' => $body,
        'timeout' => 10,
        'ignore_errors' => true,                  // read the answer of a 4xx/5xx too
    ]]);
    $url = rtrim($sidecarUrl, '/') . '/inbound/' . rawurlencode($action);
    $stream = @fopen($url, 'r', false, $context);
    if ($stream === false) return [0, null];      // the sidecar is unreachable
    $headers = stream_get_meta_data($stream)['wrapper_data'];
    preg_match('{^HTTP/\S+ (\d{3})}', $headers[0] ?? '', $status);
    $length = -1;
    foreach ($headers as $header) {
        if (preg_match('/^content-length:\s*(\d+)/i', $header, $m)) $length = (int) $m[1];
    }
    // Read exactly the answer: the server may keep the connection open after it.
    $answer = stream_get_contents($stream, $length);
    fclose($stream);
    return [(int) ($status[1] ?? 0), json_decode((string) $answer, true)];
}
// [/readme:php-inbound]
