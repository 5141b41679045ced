<?php
// Acme POS's side of the ShopiMind sidecar: every bridge route, no framework.
//
//   APP_SECRET=... SIDECAR_URL=http://127.0.0.1:8080 php -S 127.0.0.1:8000 index.php
//
// The sidecar calls POST /shopimind/<route> (APP_BASE_URL=http://127.0.0.1:8000/shopimind),
// signed with APP_SECRET. POST /till/sale is this app's own route: a sale at the till, sent
// to the sidecar as the inbound action `sale`.

declare(strict_types=1);

require __DIR__ . '/signature.php';
require __DIR__ . '/dataset.php';

const PREFIX = '/shopimind';

function answer(array $value, int $status = 200): void {
    http_response_code($status);
    header('Content-Type: application/json');
    echo json_encode($value, JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE);
}

// Inbound secrets, one file per installation (the built-in server may run several workers).
function secret_file(string $installationId): string {
    $dir = getenv('APP_STATE_DIR') ?: sys_get_temp_dir() . '/acme-pos-php';
    if (!is_dir($dir)) {
        mkdir($dir, 0700, true);
    }
    return $dir . '/' . hash('sha256', $installationId) . '.secret';
}

function test_connection(array $settings): array {
    $key = $settings['api_key'] ?? '';
    $url = $settings['api_url'] ?? '';
    if (!is_string($key) || $key === '' || !is_string($url) || !str_starts_with($url, 'https://')) {
        return ['ok' => false, 'error' => 'an Acme POS api_url (https://) and api_key are required'];
    }
    return ['ok' => true];
}

function lifecycle(string $event, array $call): array {
    $installationId = (string) ($call['installation_id'] ?? '');
    if ($event === 'activated' && is_string($call['inbound_secret'] ?? null)) {
        // Kept to sign this shop's inbound calls; the same event twice writes the same file.
        file_put_contents(secret_file($installationId), $call['inbound_secret'], LOCK_EX);
    }
    return ['ok' => true, 'external_account' => ['id' => 'acme-1042', 'name' => $call['shop_name'] ?? null]];
}

function provisioning(): array {
    $sources = [];
    foreach (STORES as $key => $city) {
        $sources[] = ['key' => $key, 'label' => "Acme POS — $city", 'type' => 'pos', 'parent' => 'acme'];
    }
    return ['data_sources' => $sources];
}

function sync_page(string $entity, array $call): array {
    $window = $call['window'] ?? [];
    $limit = $call['limit'] ?? 0;
    if (!is_int($limit) || $limit < 1) {
        return [400, ['error' => 'bad_limit']];
    }
    try {
        $since = (float) (new DateTimeImmutable((string) ($window['since'] ?? '')))->format('U.u');
        $until = (float) (new DateTimeImmutable((string) ($window['until'] ?? '')))->format('U.u');
    } catch (Exception) {
        return [400, ['error' => 'bad_window']];
    }
    $offset = 0;
    if (($call['cursor'] ?? null) !== null) {
        $decoded = json_decode((string) base64_decode((string) $call['cursor'], true), true);
        if (!is_int($decoded['offset'] ?? null)) {
            return [400, ['error' => 'bad_cursor']];
        }
        $offset = $decoded['offset'];
    }
    $inWindow = array_values(array_filter(
        records($entity, (string) ($call['source_key'] ?? '')),
        function (array $record) use ($since, $until): bool {
            $updated = strtotime($record['updated_at']);
            return $updated > $since && $updated <= $until;
        },
    ));
    $items = array_slice($inWindow, $offset, $limit);
    $end = $offset + count($items);
    $next = $end < count($inWindow) ? base64_encode(json_encode(['offset' => $end])) : null;
    return [200, ['items' => $items, 'next' => $next]];
}

function answer_page(array $statusAndPage): void {
    [$status, $page] = $statusAndPage;
    answer($page, $status);
}

function till_sale(array $sale): array {
    $installationId = (string) ($sale['installation_id'] ?? '');
    $file = secret_file($installationId);
    if (!is_file($file)) {
        return [409, ['error' => 'this shop has not activated the integration']];
    }
    [$status, $answer] = send_inbound(
        (string) getenv('SIDECAR_URL'),
        'sale',
        ['amount' => $sale['amount'] ?? 0, 'store' => $sale['store'] ?? '', 'email' => $sale['email'] ?? ''],
        $installationId,
        (string) file_get_contents($file),
        'sale-' . ($sale['ticket'] ?? bin2hex(random_bytes(8))),
    );
    return [$status, ['sidecar_status' => $status, 'sidecar_answer' => $answer]];
}

$path = parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH);
$method = $_SERVER['REQUEST_METHOD'];

if ($method === 'GET' && $path === PREFIX . '/health') {
    answer(['ok' => true]);
    return;
}
if ($method === 'POST' && $path === '/till/sale') {
    [$status, $body] = till_sale(json_decode(file_get_contents('php://input'), true) ?? []);
    answer($body, $status >= 200 && $status < 300 ? 200 : 502);
    return;
}
if ($method !== 'POST' || !str_starts_with($path, PREFIX . '/')) {
    answer(['error' => 'not_found'], 404);
    return;
}

$body = signed_by_sidecar((string) getenv('APP_SECRET'));
if ($body === null) {
    answer(['error' => 'unauthorized'], 401);
    return;
}
$call = json_decode($body, true);
if (!is_array($call)) {
    answer(['error' => 'invalid_json'], 400);
    return;
}
$settings = is_array($call['settings'] ?? null) ? $call['settings'] : [];
[$route, $name] = array_pad(explode('/', substr($path, strlen(PREFIX) + 1), 2), 2, '');
$name = rawurldecode($name);

match (true) {
    $route === 'test-connection' => answer(test_connection($settings)),
    $route === 'remote-data' => answer(['data' => $name === 'stores'
        ? array_map(fn ($key, $city) => ['value' => $key, 'label' => $city], array_keys(STORES), STORES)
        : []]),
    $route === 'lifecycle' => answer(lifecycle($name, $call)),
    $route === 'provisioning' => answer(provisioning()),
    $route === 'sources' && $name === 'orders' => answer(['sources' => array_keys(STORES)]),
    $route === 'sync' && known_entity($name) => answer_page(sync_page($name, $call)),
    default => answer(['error' => 'not_found'], 404),
};
