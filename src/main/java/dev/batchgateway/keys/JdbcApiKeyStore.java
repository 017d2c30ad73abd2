package dev.batchgateway.keys;

import dev.batchgateway.identity.ApiKey;
import dev.batchgateway.identity.ApiKeyStore;
import dev.batchgateway.identity.KeyLimits;
import dev.batchgateway.identity.KeyTerms;
import dev.batchgateway.identity.KeyStoreUnavailableException;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.temporal.ChronoUnit;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.UUID;
import java.util.function.Supplier;
import org.springframework.dao.DataAccessException;
import org.springframework.jdbc.core.simple.JdbcClient;
import org.springframework.stereotype.Repository;

/** API keys in the {@code api_key} table, found by the unique index on the digest of their secret. */
@Repository
class JdbcApiKeyStore implements ApiKeyStore {

    private static final String COLUMNS = "id, prefix, user_id, name, created_at, revoked_at, last_used_at, expires_at, models, "
            + "tokens_per_day, tokens_per_month, requests_per_minute, service_tier";

    private final JdbcClient jdbc;

    JdbcApiKeyStore(JdbcClient jdbc) {
        this.jdbc = jdbc;
    }

    @Override
    public void add(ApiKey key, byte[] digest) {
        KeyTerms terms = key.terms();
        reaching(() -> jdbc.sql("""
                        INSERT INTO api_key (id, digest, prefix, user_id, name, created_at, expires_at, models,
                                             tokens_per_day, tokens_per_month, requests_per_minute, service_tier)
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?::text[], ?, ?, ?, ?)""")
                .params(key.id(), digest, key.prefix(), key.userId(), key.name(), at(key.createdAt()),
                        terms.expiresAt() == null ? null : at(terms.expiresAt()),
                        terms.models().isEmpty() ? null : terms.models().toArray(String[]::new),
                        terms.limits().tokensPerDay(), terms.limits().tokensPerMonth(), terms.limits().requestsPerMinute(),
                        terms.serviceTier())
                .update());
    }

    @Override
    public Optional<ApiKey> findByDigest(byte[] digest) {
        return reaching(() -> jdbc.sql("SELECT " + COLUMNS + " FROM api_key WHERE digest = ?")
                .param(digest)
                .query(JdbcApiKeyStore::key)
                .optional());
    }

    @Override
    public List<KeptKey> mostRecentlyUsed(int most) {
        return reaching(() -> jdbc.sql("SELECT digest, " + COLUMNS + """
                         FROM api_key
                        WHERE revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())
                        ORDER BY last_used_at DESC NULLS LAST, created_at DESC
                        LIMIT ?""")
                .param(most)
                .query((rs, row) -> new KeptKey(rs.getBytes("digest"), key(rs, row)))
                .list());
    }

    @Override
    public List<ApiKey> ofUser(long userId) {
        return reaching(() -> jdbc.sql("SELECT " + COLUMNS + " FROM api_key WHERE user_id = ? ORDER BY created_at, id")
                .param(userId)
                .query(JdbcApiKeyStore::key)
                .list());
    }


    @Override
    public Optional<ApiKey> revoke(UUID id, Instant at) {
        return reaching(() -> jdbc.sql("UPDATE api_key SET revoked_at = coalesce(revoked_at, ?) WHERE id = ? RETURNING " + COLUMNS)
                .params(at(at), id)
                .query(JdbcApiKeyStore::key)
                .optional());
    }

    @Override
    public void markUsed(Map<UUID, Instant> lastUse) {
        if (lastUse.isEmpty()) {
            return;
        }
        var ids = new String[lastUse.size()];
        var micros = new long[lastUse.size()];
        int i = 0;
        for (var use : lastUse.entrySet()) {
            ids[i] = use.getKey().toString();
            micros[i++] = ChronoUnit.MICROS.between(Instant.EPOCH, use.getValue());
        }
        // one statement for all keys used since the last write; an older time never overwrites a newer one
        reaching(() -> jdbc.sql("""
                        UPDATE api_key
                        SET last_used_at = greatest(api_key.last_used_at,
                                                    timestamptz 'epoch' + used.micros * interval '1 microsecond')
                        FROM unnest(?::uuid[], ?::bigint[]) AS used (id, micros)
                        WHERE api_key.id = used.id""")
                .params(ids, micros)
                .update());
    }

    private static ApiKey key(ResultSet rs, int row) throws SQLException {
        var models = rs.getArray("models");
        var terms = new KeyTerms(instant(rs, "expires_at"),
                models == null ? List.of() : List.of((String[]) models.getArray()),
                new KeyLimits(limit(rs, "tokens_per_day"), limit(rs, "tokens_per_month"), limit(rs, "requests_per_minute")),
                rs.getString("service_tier"));
        return new ApiKey(rs.getObject("id", UUID.class), rs.getString("prefix"), rs.getLong("user_id"),
                rs.getString("name"), instant(rs, "created_at"), instant(rs, "revoked_at"), instant(rs, "last_used_at"),
                terms);
    }

    private static Long limit(ResultSet rs, String column) throws SQLException {
        long value = rs.getLong(column);
        return rs.wasNull() ? null : value;
    }

    private static Instant instant(ResultSet rs, String column) throws SQLException {
        var time = rs.getObject(column, java.time.OffsetDateTime.class);
        return time == null ? null : time.toInstant();
    }

    private static Object at(Instant instant) {
        return instant.atOffset(ZoneOffset.UTC);
    }

    private static <T> T reaching(Supplier<T> query) {
        try {
            return query.get();
        } catch (DataAccessException away) {
            // the message names the table and the failure, never a key: only digests ever reach SQL
            throw new KeyStoreUnavailableException("the key store is unavailable: " + away.getMostSpecificCause().getClass().getSimpleName(), away);
        }
    }
}
