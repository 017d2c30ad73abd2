# Build with the Maven wrapper on a JDK 25, run on a JRE 25 as a non-root user.
FROM eclipse-temurin:25-jdk AS build
WORKDIR /src
COPY .mvn .mvn
COPY mvnw pom.xml ./
RUN ./mvnw -B -q dependency:go-offline
COPY src src
RUN ./mvnw -B -q -DskipTests package

FROM eclipse-temurin:25-jre
RUN useradd --system --uid 10001 gateway
WORKDIR /app
COPY --from=build /src/target/batch-gateway.jar batch-gateway.jar
USER gateway
EXPOSE 8080
# eclipse-temurin:25-jre ships no curl or wget (adoptium/adoptium-support#1413): ask /health with bash's /dev/tcp
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${SERVER_PORT:-8080} && printf 'GET /health HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && head -n 1 <&3 | grep -q ' 200 '"]
# exec form: java is PID 1 and gets docker stop's SIGTERM, which starts the graceful shutdown
ENTRYPOINT ["java", "-jar", "/app/batch-gateway.jar"]
