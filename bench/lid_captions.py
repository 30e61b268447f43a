"""Captions for measuring language ID across letter case: English alt text of the kinds real
pages carry (news photos and headlines, products, people and places, recipes, travel, sport,
real estate, how-to), and foreign captions of the same kinds in the languages a case fold
risks keeping as English (German, French, Spanish, Dutch, Italian, Portuguese, Swedish,
Danish, Norwegian, Finnish, Hungarian, Romanian, Polish, Czech, Indonesian, Turkish), plus the
alt texts of the real Common Crawl page in the tests' fixtures (Aragonese Wikipedia). Written
for this check; each line is one caption."""

ENGLISH = """
Mercury News Letters to the Editor for Jan. 20, 2023
BREAKING: BENUE GUBER APPEAL MOVED TO ABUJA
A firefighter sprays water on a burning house in Paradise, California
President Biden speaks during a news conference at the White House
Children play in the snow at Central Park after the first storm of the season
The new stadium under construction in downtown Las Vegas
Protesters gather outside the courthouse on Tuesday morning
Police officers stand guard near the scene of the shooting
Flooded streets in Houston after Hurricane Harvey made landfall
A man walks his dog along the beach at sunset
Stainless steel kitchen sink with pull down faucet
Men's waterproof hiking boots, brown leather, size 10
Organic cotton baby blanket with elephant print
Wireless noise cancelling headphones in matte black
Vintage wooden coffee table with two drawers
Handmade ceramic mug with blue glaze
Apple iPhone 14 Pro Max 256GB Deep Purple
Samsung Galaxy S23 Ultra phone case with kickstand
LEGO Star Wars Millennium Falcon building kit
Queen size memory foam mattress topper
Chocolate chip cookies cooling on a wire rack
Grilled salmon with lemon and fresh dill
Homemade pepperoni pizza straight out of the oven
A bowl of creamy tomato soup with basil
Slow cooker beef stew with carrots and potatoes
Fresh strawberries in a white bowl on a wooden table
The living room features hardwood floors and a stone fireplace
Spacious master bedroom with walk-in closet
Backyard patio with a fire pit and string lights
Three bedroom ranch home for sale in Austin, Texas
Aerial view of the city skyline at night
The Golden Gate Bridge shrouded in fog
Tourists visit the Eiffel Tower in Paris
Snow covered mountains in Yellowstone National Park
Hikers on a trail in the Grand Canyon
A lighthouse on the rocky coast of Maine
Lebron James dunks during the fourth quarter against the Celtics
Manchester United players celebrate after scoring a goal
Serena Williams returns a serve at the US Open
The quarterback throws a pass during the first half
Runners cross the finish line at the Boston Marathon
Students walk across campus on the first day of classes
Teacher reading a book to a group of young children
Doctor talking with a patient in a hospital room
Nurses wearing masks at a vaccination clinic
Volunteers pack food boxes at the local food bank
How to change a flat tire in five easy steps
Step by step guide to planting tomatoes in your garden
Woman working on a laptop in a coffee shop
Business people shaking hands in a modern office
Close up of a honey bee on a yellow flower
Portrait of a golden retriever puppy lying on the grass
Two cats sleeping on a couch
A red fox in the snow
Bald eagle perched on a tree branch
Elephants walking across the savanna at dusk
Wedding couple dancing under the stars
Bride and groom with their families after the ceremony
Graduates throw their caps in the air
Family photo at the Thanksgiving dinner table
Old black and white photo of the main street in 1920
Map of the United States showing election results by county
Chart showing the rise in home prices since 2010
Screenshot of the new settings menu in Windows 11
Cover of the book The Great Gatsby
Poster for the movie Top Gun Maverick
Taylor Swift performs on stage during the Eras Tour
Actor Tom Hanks at the premiere in Los Angeles
Author signing copies of her new novel at the bookstore
Mayor announces new housing plan at city hall
Workers repair a water main break on Oak Street
Traffic backed up on Interstate 95 after a crash
A plane takes off from Chicago O'Hare International Airport
Electric cars charging at a station in a parking lot
Solar panels on the roof of a suburban house
Wind turbines on a hill at sunrise
Farmer harvesting corn with a combine
Cows grazing in a green pasture
Fishing boats in the harbour at dawn
The morning ferry leaving the pier
Christmas tree with lights and ornaments in the window
Jack o lanterns on a porch for Halloween
Fireworks over the river on the Fourth of July
Easter eggs in a basket on the lawn
Our team at the annual company picnic
Meet our staff
Customer reviews for the blue denim jacket
Free shipping on orders over fifty dollars
Sign up for our weekly newsletter
Download the app on the App Store
Click to enlarge the floor plan
Watch the full video of the interview
Read more about our history
Contact us for a free quote
Best hiking trails near Seattle
Top ten things to do in New York City this weekend
Why you should never skip breakfast
The best laptops for students in 2024
Lake Tahoe cabin with mountain views
Downtown Chicago apartment with a rooftop pool
Scientists study coral reefs off the coast of Australia
Astronauts aboard the International Space Station
The James Webb telescope captures a distant galaxy
Microscope image of a cancer cell
Volcano erupting on the Big Island of Hawaii
Rescue workers search through rubble after the earthquake
Smoke from wildfires covers the Bay Area
Supreme Court justices pose for their official photo
Senator speaks to reporters on Capitol Hill
Governor signs the budget bill into law
Voters wait in line at a polling station
Soldiers board a transport plane at the air base
Navy ship docked at Pearl Harbor
Men's basketball team poses with the championship trophy
High school band marching in the homecoming parade
Little league players shake hands after the game
Kids building a sandcastle on the beach
Grandmother baking bread with her granddaughter
Young woman jogging in the park in the morning
Yoga class on the beach at sunrise
Fresh vegetables at the farmers market
Street food vendors in Bangkok
Coffee beans being roasted
A glass of red wine next to a plate of cheese
Craft beer taps at the brewery
Birthday cake with candles
Bathroom remodel with white subway tile
Front porch with rocking chairs
Garden shed painted light green
Used 2018 Honda Civic for sale, low mileage
Ford F-150 pickup truck parked in the driveway
Classic red convertible at a car show
Mountain bike leaning against a tree
Kayaks on the shore of a calm lake
Camping tent under the milky way
Cruise ship sailing into port
Train station platform during rush hour
City bus on a rainy street
New York Yankees vs Boston Red Sox
Breaking news: storm knocks out power to thousands
Local man wins state lottery jackpot
Police arrest suspect in downtown robbery
School board meeting on Monday night
Weather forecast: sunny and warm this weekend
Stock market ends the week higher
Gas prices rise ahead of the holiday weekend
Company reports record profits in third quarter
New restaurant opens on Main Street
Museum unveils new dinosaur exhibit
Library hosts summer reading program for kids
Community garden volunteers plant flowers
Firefighters rescue a kitten from a storm drain
Bridge closed for repairs until next month
Hospital opens new cancer treatment center
University announces new president
Church celebrates its hundredth anniversary
Historic building to be torn down
City council approves new bike lanes
Aerial photo of the flooded farmland along the Mississippi River
Sunrise over the Atlantic Ocean from Cape Cod
Officials inspect damage to the roof of the elementary school
The Seattle skyline with Mount Rainier in the background
Coach Nick Saban talks to his players on the sideline
Fans cheer as the team arrives at the airport
Goalkeeper makes a diving save in the second half
Tiger Woods tees off on the first hole at Augusta
A worker assembles circuit boards at the factory
Shipping containers stacked at the Port of Los Angeles
Farmers market vendors sell peaches and plums
An old barn in the countryside under a cloudy sky
Red barn with a white fence in Vermont
Autumn leaves on a country road in New England
Snowplow clears the highway after a blizzard
Ice skaters on the frozen pond in the town square
Pumpkin patch at the family farm
Apple orchard in full bloom in spring
Cherry blossoms along the Tidal Basin in Washington
Sailboats racing on the bay on a windy afternoon
Surfer riding a big wave in Hawaii
Scuba diver swimming with a sea turtle
Penguins on the ice in Antarctica
Polar bear walking on the sea ice
Monarch butterflies on a milkweed plant
Hummingbird feeding from a red flower
Baby goats playing in the barnyard
Horse and rider jumping a fence at the show
Dog catching a frisbee in the park
Kitten playing with a ball of yarn
Rabbit sitting in the grass
Deer crossing a country road at dawn
Close up of a green tree frog
Brown bear catching salmon in a river in Alaska
Whale breaching off the coast of California
Old stone church in a small English village
Victorian house with a wraparound porch
Modern glass office tower in the financial district
Abandoned factory on the edge of town
Colorful row houses in San Francisco
Brick townhouses on a tree lined street in Boston
Log cabin in the woods covered with snow
Beach house with a view of the ocean
Kitchen with granite countertops and an island
Dining room with a long wooden table and eight chairs
Home office with a standing desk and two monitors
Kids bedroom with bunk beds and a reading nook
Laundry room with a front loading washer and dryer
Two car garage with an electric door
Swimming pool with a diving board in the backyard
Pair of white running shoes on a wooden floor
Black leather handbag with a gold chain strap
Silver necklace with a heart pendant
Men's blue cotton dress shirt
Women's red wool winter coat
Kids rain boots with dinosaur print
Stainless steel water bottle, 32 ounce
Cast iron skillet with a wooden handle
Electric pressure cooker on the kitchen counter
Cordless drill with two batteries and a charger
Gas grill with side burner and cover
Garden hose reel with thirty meters of hose
Office chair with lumbar support and adjustable arms
Bookshelf with five shelves in walnut finish
Table lamp with a linen shade
Set of four dinner plates in white porcelain
Smart watch with a heart rate monitor
Laptop stand made of aluminium
Gaming mouse with programmable buttons
Mechanical keyboard with RGB backlight
4K television mounted on the living room wall
Bluetooth speaker on a picnic blanket
Digital camera with a zoom lens
Drone flying over a corn field
Electric scooter parked on the sidewalk
Child's bicycle with training wheels
Baby stroller with a canopy
Pancakes with blueberries and maple syrup
Eggs Benedict with hollandaise sauce
Avocado toast with a poached egg
Bowl of ramen with pork and a soft boiled egg
Sushi platter with salmon and tuna rolls
Tacos with grilled chicken and salsa
Spaghetti and meatballs in tomato sauce
Caesar salad with croutons and parmesan
Cheeseburger with fries and a milkshake
Fried chicken with mashed potatoes and gravy
Roast turkey on a platter for Thanksgiving
Apple pie with a lattice crust
Banana bread sliced on a cutting board
Iced coffee with cream in a tall glass
Cup of hot chocolate with marshmallows
Smoothie bowl topped with granola and fruit
How to make sourdough bread at home
Ten tips for a better night's sleep
What to pack for a week in Italy
The best places to see the northern lights
A beginner's guide to growing herbs indoors
Why electric cars are getting cheaper
Everything you need to know about the new tax rules
Five easy dinners for busy weeknights
How to clean a cast iron pan
Photos: the best moments from the Olympic Games
In pictures: a year of extreme weather
Gallery: the red carpet at the Oscars
Video: firefighters battle a brush fire near the highway
Opinion: our city needs more affordable housing
Letter to the editor: save the old library
Obituary photo of John Smith, 1941 to 2023
Headshot of Dr. Sarah Johnson, chief medical officer
Profile picture of the author
Portrait of Abraham Lincoln from 1863
Martin Luther King Jr. delivers a speech in Washington
Neil Armstrong on the surface of the Moon
Queen Elizabeth II waves from the balcony of Buckingham Palace
Elon Musk at a Tesla event in Texas
Oprah Winfrey interviews a guest on her show
Barack Obama shakes hands with supporters at a rally
Dolly Parton performs at the Grand Ole Opry
Beyonce on stage at Coachella
Kansas City Chiefs quarterback Patrick Mahomes
Golden State Warriors guard Stephen Curry shoots a three pointer
Los Angeles Dodgers celebrate winning the World Series
NEW YORK CITY MARATHON 2023
MAN CHARGED WITH THEFT OF CATALYTIC CONVERTERS
SCHOOLS CLOSED AS SNOWSTORM HITS THE REGION
HOUSE FIRE ON ELM STREET LEAVES FAMILY HOMELESS
LOCAL TEAM WINS STATE CHAMPIONSHIP
FREE SHIPPING ON ALL ORDERS
SALE ENDS SUNDAY
NEW ARRIVALS FOR SPRING
SHOP THE COLLECTION
JOIN OUR MAILING LIST
Smith Family Dental Care
Riverside Community College
Johnson and Sons Plumbing and Heating
The Grand Hotel Ballroom
Main Street Bakery and Cafe
Pacific Northwest Trail Association
Friends of the Public Library
Saint Mary's Catholic Church
Lincoln High School Class of 1985
Springfield Police Department
County Fairgrounds Parking Map
Annual Report 2022 Cover
Quarterly Earnings Presentation Slide
Wedding Photography by Emily Rose
Real Estate Listing: 42 Maple Avenue
Luxury Condo With City Views
Charming Cottage Near the Beach
Historic Farmhouse on Ten Acres
Fully Renovated Kitchen and Baths
Open House This Saturday
""".strip().splitlines()

FOREIGN = """
Die Feuerwehr löscht einen Brand in einem Wohnhaus in Berlin
Bundeskanzler spricht auf einer Pressekonferenz im Kanzleramt
Kinder spielen im Schnee im Stadtpark
Das neue Stadion wird in der Innenstadt gebaut
Herren Wanderschuhe wasserdicht aus braunem Leder
Gemütliches Wohnzimmer mit Kamin und Holzboden
Frisch gebackenes Brot auf dem Küchentisch
Blick auf die Alpen im Winter
Spieler feiern nach dem Tor im Stadion
Unser Team beim jährlichen Sommerfest
Jetzt kostenlos registrieren und Angebote erhalten
Wohnung zu vermieten mit Balkon und Garten
Rezept für Apfelstrudel mit Vanillesoße
Polizei sucht Zeugen nach Unfall auf der Autobahn
Les pompiers éteignent un incendie dans un immeuble à Paris
Le président parle lors d'une conférence de presse à l'Élysée
Des enfants jouent dans la neige au parc
Chaussures de randonnée imperméables pour homme en cuir marron
Salon lumineux avec cheminée et parquet
Vue aérienne de la ville la nuit
Les joueurs célèbrent après le but
Recette de la tarte aux pommes maison
Appartement à louer avec terrasse et jardin
Notre équipe lors du pique-nique annuel
Inscrivez-vous à notre lettre d'information
Les touristes visitent la tour Eiffel
Los bomberos apagan un incendio en un edificio de Madrid
El presidente habla durante una rueda de prensa
Niños jugando en la nieve en el parque
Zapatos de senderismo impermeables para hombre
Salón con chimenea y suelo de madera
Vista aérea de la ciudad de noche
Los jugadores celebran el gol en el estadio
Receta de tortilla de patatas casera
Piso en venta con terraza y piscina
Nuestro equipo en la fiesta anual de la empresa
Suscríbete a nuestro boletín semanal
Playa de arena blanca al atardecer
De brandweer blust een brand in een woning in Amsterdam
De minister spreekt tijdens een persconferentie
Kinderen spelen in de sneeuw in het park
Waterdichte wandelschoenen voor heren van bruin leer
Woonkamer met open haard en houten vloer
Luchtfoto van de stad bij nacht
De spelers vieren het doelpunt in het stadion
Recept voor appeltaart met slagroom
Huis te koop met tuin en garage
Ons team tijdens het jaarlijkse bedrijfsuitje
Meld je aan voor onze nieuwsbrief
Fietsers op een dijk langs de rivier
I vigili del fuoco spengono un incendio a Roma
Il presidente parla durante una conferenza stampa
Bambini che giocano sulla neve nel parco
Scarpe da trekking impermeabili da uomo
Soggiorno con camino e pavimento in legno
Ricetta della pasta alla carbonara
Appartamento in vendita con terrazzo
I giocatori festeggiano dopo il gol
Os bombeiros apagam um incêndio num prédio em Lisboa
O presidente fala durante uma conferência de imprensa
Crianças brincam na neve no parque
Sapatos de caminhada impermeáveis para homem
Sala de estar com lareira e piso de madeira
Receita de bolo de chocolate caseiro
Apartamento à venda com varanda
Os jogadores comemoram o golo no estádio
Brandmän släcker en brand i ett hus i Stockholm
Barn leker i snön i parken
Vardagsrum med öppen spis och trägolv
Brandmænd slukker en brand i en lejlighed i København
Børn leger i sneen i parken
Strażacy gaszą pożar budynku w Warszawie
Dzieci bawią się na śniegu w parku
Hasiči hasí požár domu v Praze
Děti si hrají na sněhu v parku
Petugas pemadam kebakaran memadamkan api di sebuah rumah di Jakarta
Anak-anak bermain di taman pada sore hari
İtfaiye ekipleri İstanbul'da bir binadaki yangını söndürdü
Çocuklar parkta karda oynuyor
Kinder basteln Laternen für den Martinsumzug
Rathaus der Stadt München am Marienplatz
Sonnenuntergang am Strand von Sylt
Gebrauchtwagen zu verkaufen, wenig gefahren
Damen Wintermantel aus Wolle in Rot
Kaffeemaschine aus Edelstahl mit Milchaufschäumer
Schüler sitzen im Klassenzimmer und hören dem Lehrer zu
Die Mannschaft jubelt nach dem Sieg im Pokalfinale
Neues Einkaufszentrum öffnet am Samstag
Ferienwohnung mit Meerblick an der Ostsee
Wanderweg durch den Schwarzwald im Herbst
Der Bürgermeister eröffnet das neue Schwimmbad
Le marché de Noël sur la place de la cathédrale
Coucher de soleil sur la plage de Biarritz
Voiture d'occasion à vendre, faible kilométrage
Manteau d'hiver pour femme en laine rouge
Machine à café en acier inoxydable
Les élèves écoutent le professeur en classe
L'équipe fête sa victoire en finale de la coupe
Nouveau centre commercial ouvert samedi
Location de vacances avec vue sur la mer
Randonnée dans les Alpes en automne
Le maire inaugure la nouvelle piscine municipale
Mercado de Navidad en la plaza mayor
Puesta de sol en la playa de Cádiz
Coche de segunda mano en venta con pocos kilómetros
Abrigo de invierno para mujer de lana roja
Cafetera de acero inoxidable con espumador de leche
Los alumnos escuchan al profesor en el aula
El equipo celebra la victoria en la final de copa
Nuevo centro comercial abre el sábado
Casa rural con vistas a la montaña
Ruta de senderismo por los Pirineos en otoño
El alcalde inaugura la nueva piscina municipal
Kerstmarkt op het marktplein in Utrecht
Zonsondergang op het strand van Scheveningen
Tweedehands auto te koop met weinig kilometers
Dames winterjas van rode wol
Koffiezetapparaat van roestvrij staal
Leerlingen luisteren naar de leraar in de klas
Het team viert de overwinning in de bekerfinale
Nieuw winkelcentrum opent zaterdag
Vakantiehuis met uitzicht op zee
Wandelroute door de Veluwe in de herfst
De burgemeester opent het nieuwe zwembad
Mercatino di Natale in piazza del Duomo
Tramonto sulla spiaggia di Rimini
Auto usata in vendita con pochi chilometri
Cappotto invernale da donna in lana rossa
Gli studenti ascoltano l'insegnante in classe
La squadra festeggia la vittoria in finale
Mercado de Natal na praça central do Porto
Pôr do sol na praia de Copacabana
Carro usado à venda com poucos quilómetros
Casaco de inverno feminino de lã vermelha
Os alunos ouvem o professor na sala de aula
Julmarknad på torget i Göteborg
Solnedgång över havet på västkusten
Begagnad bil till salu med låg körsträcka
Julemarked på rådhuspladsen i Aarhus
Solnedgang over havet ved Skagen
Jarmark bożonarodzeniowy na rynku w Krakowie
Zachód słońca nad morzem w Sopocie
Vánoční trhy na Staroměstském náměstí
Západ slunce nad rybníkem v jižních Čechách
Pasar malam di pusat kota Yogyakarta
Matahari terbenam di pantai Kuta Bali
Yılbaşı pazarı Taksim meydanında kuruldu
Antalya sahilinde gün batımı
Joulumarkkinat Helsingin Senaatintorilla
Auringonlasku järven rannalla kesällä
Karácsonyi vásár a budapesti Vörösmarty téren
Naplemente a Balaton partján nyáron
Julemarked på torget i Bergen sentrum
Solnedgang over fjorden om sommeren
Târg de Crăciun în Piața Sfatului din Brașov
Apus de soare pe plaja din Mamaia
Biquipedia
A enciclopedia libre
Escudo d'armas
Escopete ubicada en Castiella-La Mancha
""".strip().splitlines()
