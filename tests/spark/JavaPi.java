// Pi by Monte Carlo on a Spark cluster, for Flint's Spark compatibility tests and benchmark.
// Usage: JavaPi [slices] [holdSeconds]
//   slices       partitions, 100,000 points each (default 2), like Spark's own SparkPi example
//   holdSeconds  keep the application alive this long after printing (default 0), for the
//                --status/--kill tests
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ThreadLocalRandom;

import org.apache.spark.SparkConf;
import org.apache.spark.api.java.JavaSparkContext;

public final class JavaPi {
  public static void main(String[] args) throws Exception {
    int slices = args.length > 0 ? Integer.parseInt(args[0]) : 2;
    long holdSeconds = args.length > 1 ? Long.parseLong(args[1]) : 0;
    SparkConf conf = new SparkConf();
    if (!conf.contains("spark.app.name")) {
      conf.setAppName("JavaPi");
    }
    JavaSparkContext sc = new JavaSparkContext(conf);
    int perSlice = 100000;
    List<Integer> parts = new ArrayList<>();
    for (int i = 0; i < slices; i++) {
      parts.add(i);
    }
    long inside = sc.parallelize(parts, slices)
        .map(p -> {
          ThreadLocalRandom r = ThreadLocalRandom.current();
          long hits = 0;
          for (int i = 0; i < perSlice; i++) {
            double x = r.nextDouble() * 2 - 1;
            double y = r.nextDouble() * 2 - 1;
            if (x * x + y * y <= 1) {
              hits++;
            }
          }
          return hits;
        })
        .reduce(Long::sum);
    System.out.println("Pi is roughly " + 4.0 * inside / ((long) perSlice * slices));
    if (holdSeconds > 0) {
      System.out.println("holding for " + holdSeconds + " s");
      Thread.sleep(holdSeconds * 1000);
    }
    sc.stop();
  }
}
