# Build with the Maven wrapper on a JDK 25, run on a JRE 25 as a non-root user.
FROM eclipse-temurin:25-jdk AS build
WORKDIR /src
COPY .mvn .mvn
COPY mvnw pom.xml ./
RUN ./mvnw -B -q dependency:go-offline
COPY src src
RUN ./mvnw -B -q -DskipTests package

FROM eclipse-temurin:25-jre
RUN useradd --system --uid 10001 gateway \
 && mkdir -p /var/lib/batch-gateway && chown gateway /var/lib/batch-gateway
# usage rows written while PostgreSQL is away are journaled here: mount a volume on it so they outlive the container
ENV GATEWAY_USAGE_JOURNAL_DIR=/var/lib/batch-gateway/usage-journal
VOLUME /var/lib/batch-gateway
WORKDIR /app
COPY --from=build /src/target/batch-gateway.jar batch-gateway.jar
# the launcher puts on java's command line what the JDK reads only there (GATEWAY_WORKER_IDLE_TIMEOUT's keep-alive)
COPY bin/batch-gateway bin/batch-gateway
ENV BATCH_GATEWAY_JAR=/app/batch-gateway.jar
USER gateway
# 8080: the API (keys required); 8081: management (Prometheus, health details, readiness), for the private network only:
# it listens on the container's loopback until MANAGEMENT_SERVER_ADDRESS=0.0.0.0 opens it (docker-compose.yml and the
# Kubernetes manifests do, for Prometheus and the probes)
EXPOSE 8080 8081
# eclipse-temurin:25-jre ships no curl or wget (adoptium/adoptium-support#1413): ask liveness on the management port
# with bash's /dev/tcp (the API port's plain /health answers too, but the management port is where health lives now)
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${MANAGEMENT_SERVER_PORT:-8081} && printf 'GET /actuator/health/liveness HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && head -n 1 <&3 | grep -q ' 200 '"]
# exec form, and the launcher execs java: java is PID 1 and gets docker stop's SIGTERM, which starts the graceful
# shutdown. It finds the image's JRE by JAVA_HOME (/opt/java/openjdk)
# bin/batch-gateway sizes the heap to the container: 75 % of its memory limit (1 GiB without one), unless
# JDK_JAVA_OPTIONS or JAVA_TOOL_OPTIONS set -Xmx or a RAM percentage (docs/operations.md, Memory)
ENTRYPOINT ["/app/bin/batch-gateway"]
